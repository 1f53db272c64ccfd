"""Neural networks: Module, Parameter, layers, losses (``cr.nn``; functional maths in ``F``)."""
