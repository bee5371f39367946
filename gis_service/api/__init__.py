"""HTTP: FastAPI routes, dependencies, authentication and the error map."""
