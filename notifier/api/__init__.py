"""The HTTP edge: FastAPI app, dependencies, error mapping and the v1 routers."""
