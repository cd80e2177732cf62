"""The bag commands: ``dpt-ros bag`` (:mod:`~dpt_ros.cli.bag.run`; the work on one bag in
:mod:`~dpt_ros.cli.bag.job`, online alignment in :mod:`~dpt_ros.cli.bag.alignment`,
temporal stabilisation in :mod:`~dpt_ros.cli.bag.temporal`, many bags and Ray in
:mod:`~dpt_ros.cli.bag.fleet`) and ``dpt-ros play`` (:mod:`~dpt_ros.cli.bag.play`).
Reading and writing bags is ``dpt_ros.ros.bagio`` (shared with ``dpt-ros demo``)."""

#: No public Python names: ``dpt-ros bag`` and ``dpt-ros play`` are the interface.
__all__: list[str] = []
