"""A stand-in for Nav2's lifecycle manager: drives a lifecycle node through its
transitions over the real services, as nav2_lifecycle_manager does."""

from __future__ import annotations

from helpers import scaled, spin_until
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState


class Manager:
    """Calls the node's lifecycle services, as a lifecycle manager does."""

    def __init__(self, executor, node) -> None:
        self.executor = executor
        name = "/dpt_node"
        self.change = node.create_client(ChangeState, f"{name}/change_state")
        self.get = node.create_client(GetState, f"{name}/get_state")
        assert self.change.wait_for_service(scaled(10)) and self.get.wait_for_service(scaled(10))

    def _call(self, client, request):
        future = client.call_async(request)
        assert spin_until(self.executor, future.done, 120)
        return future.result()

    def transition(self, transition_id: int) -> bool:
        return self._call(
            self.change, ChangeState.Request(transition=Transition(id=transition_id))
        ).success

    def state(self) -> str:
        return self._call(self.get, GetState.Request()).current_state.label
