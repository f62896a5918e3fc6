#!/bin/sh
# Container entry point: make the instance on first start (`init` leaves an existing one alone),
# then replace this shell with topicfeed, so SIGTERM reaches the server itself.
set -eu
topicfeed init
exec topicfeed "$@"
