"""The HTTP edge: routing declarations, middlewares, request parsing, streaming, OpenAPI."""
