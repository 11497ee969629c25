"""Serving: a TF Serving-compatible model server for development and tests, and the client library.

Needs `tensorflow-serving-api` (its protos and gRPC stubs): see BUILD_NOTES.md for the install.
"""
