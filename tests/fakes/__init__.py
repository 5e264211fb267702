"""Local stand-ins for outside systems the tests talk to over real sockets."""
