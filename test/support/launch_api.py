"""Stand-ins for the ROS 2 launch API (``launch``, ``launch_ros``, ``ament_index_python``),
which this environment does not install, so that a launch file can be run by the tests.

Each stand-in takes exactly the arguments of the real class on Humble (the oldest ROS
this package supports) and refuses others with the ``TypeError`` the real one raises, so
a misspelt keyword (``remapping=`` for ``remappings=``) fails here as it fails under
``ros2 launch``. The signatures, from ros2/launch and ros2/launch_ros (branch humble;
jazzy's are the same or wider):

- ``launch_ros/actions/node.py:119-131``: ``Node(*, executable, package, name,
  namespace, exec_name, parameters, remappings, ros_arguments, arguments, **kwargs)``,
  the rest going to ``ExecuteProcess``;
- ``launch/actions/execute_process.py:128-138``: ``ExecuteProcess(*, cmd, prefix, name,
  cwd, env, additional_env, **kwargs)``, then ``launch/actions/execute_local.py:85-106``:
  ``ExecuteLocal(*, process_description, shell, sigterm_timeout, sigkill_timeout,
  emulate_tty, output, output_format, cached_output, log_cmd, on_exit, respawn,
  respawn_delay, **kwargs)``, then ``launch/action.py:40``: ``Action(*, condition)``;
- ``launch/actions/declare_launch_argument.py:106-114``: ``DeclareLaunchArgument(name,
  *, default_value, description, choices, **kwargs)``;
- ``launch/actions/opaque_function.py:49-55``: ``OpaqueFunction(*, function, args,
  kwargs, **left_over_kwargs)``;
- ``launch/conditions/if_condition.py:38``: ``IfCondition(predicate_expression)``,
  whose expression must read true/false/1/0 (``conditions/evaluate_condition_expression_impl.py:25-49``);
- ``launch/substitutions/launch_configuration.py:36-41``:
  ``LaunchConfiguration(variable_name, *, default)``;
- ``launch/launch_description.py:53-58``: ``LaunchDescription(initial_entities, *,
  deprecated_reason)``.
"""

from __future__ import annotations

import sys
import types
from typing import Any

_ACTION = {"condition"}
_EXECUTE_LOCAL = _ACTION | {
    "shell",
    "sigterm_timeout",
    "sigkill_timeout",
    "emulate_tty",
    "output",
    "output_format",
    "cached_output",
    "log_cmd",
    "on_exit",
    "respawn",
    "respawn_delay",
}
_EXECUTE_PROCESS = _EXECUTE_LOCAL | {"prefix", "cwd", "env", "additional_env"}
_NODE = _EXECUTE_PROCESS | {
    "executable",
    "package",
    "name",
    "namespace",
    "exec_name",
    "parameters",
    "remappings",
    "ros_arguments",
    "arguments",
}


def _check(cls: str, given: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise TypeError(f"{cls}.__init__() got an unexpected keyword argument {unknown[0]!r}")


class Action:
    def __init__(self, **kwargs: Any) -> None:
        _check(type(self).__name__, kwargs, _ACTION)
        self.condition = kwargs.get("condition")


class Node(Action):
    def __init__(self, **kwargs: Any) -> None:
        _check("Node", kwargs, _NODE)
        if "executable" not in kwargs:
            raise TypeError(
                "Node.__init__() missing 1 required keyword-only argument: 'executable'"
            )
        super().__init__(condition=kwargs.get("condition"))
        self.kwargs = kwargs


class DeclareLaunchArgument(Action):
    def __init__(
        self,
        name: str,
        *,
        default_value: Any = None,
        description: str | None = None,
        choices: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name, self.default_value, self.description = name, default_value, description


class OpaqueFunction(Action):
    def __init__(
        self, *, function: Any, args: Any = None, kwargs: Any = None, **left_over_kwargs: Any
    ) -> None:
        super().__init__(**left_over_kwargs)
        self.function, self.args, self.kwargs = function, args or [], kwargs or {}


class LaunchContext:
    """The launch arguments' values by name."""

    def __init__(self, values: dict[str, str]) -> None:
        self.launch_configurations = dict(values)


class LaunchConfiguration:
    def __init__(self, variable_name: str, *, default: Any = None) -> None:
        self.variable_name, self.default = variable_name, default

    def perform(self, context: LaunchContext) -> str:
        try:
            return context.launch_configurations[self.variable_name]
        except KeyError:
            if self.default is None:
                raise KeyError(
                    f"launch configuration {self.variable_name!r} does not exist"
                ) from None
            return str(self.default)


class IfCondition:
    def __init__(self, predicate_expression: Any) -> None:
        self.predicate_expression = predicate_expression

    def evaluate(self, context: LaunchContext) -> bool:
        expression = self.predicate_expression
        text = expression.perform(context) if hasattr(expression, "perform") else str(expression)
        text = text.strip().lower()
        if text not in ("true", "false", "1", "0"):
            raise ValueError(f"Unknown value {text!r} for a condition (true, false, 1, 0)")
        return text in ("true", "1")


class LaunchDescription:
    def __init__(self, initial_entities: Any = None, *, deprecated_reason: Any = None) -> None:
        self.entities = list(initial_entities or [])


def install(monkeypatch: Any, share: str) -> None:
    """Puts the stand-ins in ``sys.modules`` (with ``monkeypatch``), the package share
    directory of every package being ``share``."""
    modules = {
        "launch": {"LaunchDescription": LaunchDescription},
        "launch.actions": {
            "DeclareLaunchArgument": DeclareLaunchArgument,
            "OpaqueFunction": OpaqueFunction,
        },
        "launch.conditions": {"IfCondition": IfCondition},
        "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": Node},
        "ament_index_python": {},
        "ament_index_python.packages": {"get_package_share_directory": lambda package: share},
    }
    for name, attributes in modules.items():
        module = types.ModuleType(name)
        for key, value in attributes.items():
            setattr(module, key, value)
        monkeypatch.setitem(sys.modules, name, module)
