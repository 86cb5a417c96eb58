"""Job functions for rq_app.py (imported by the worker by name, as rq requires)."""


def add(a, b):
    return a + b


def greet(name):
    return f"hello {name}"


def fail(why):
    raise ValueError(why)
