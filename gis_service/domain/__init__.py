"""Domain queries: every function takes a connection and a :class:`~.scope.Principal`."""
