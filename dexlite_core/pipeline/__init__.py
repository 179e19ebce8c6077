"""One module per DVC stage, each with typed inputs and ``run(config, inputs, out) -> metrics``: the only
layer that ties the libraries below together (data, hand, objects, energy, optimize, sim, model, report);
nothing below imports it (tests/test_layers.py). The scripts in stages/ read params.yaml and call ``run``."""
