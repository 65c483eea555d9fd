"""proxy_models"""
