"""Lets `pytest scenarios/` collect scenario YAML files, one test per device.

The plugin is normally loaded through its pytest11 entry point; naming it here too keeps
it loaded when entry points are off (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1). It is registered
under the same name both ways, so it is never registered twice.
"""

pytest_plugins = ["harness.pytest_plugin"]
