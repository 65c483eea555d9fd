"""One file per primitive spec; the registry in `search_space.registry` lists them."""
