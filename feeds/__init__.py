"""topicfeed's domain layer: records -> taxonomy -> store -> related -> feed rendering.

Nothing here imports Flask; the ``server`` package builds on these modules.
"""
