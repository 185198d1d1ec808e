"""Why a task back on another host restarts the whole cluster (cluster.policy.moved_host).

TF's gRPC runtime has the receiver of a tensor pull it (``RecvTensor``): a ps that applies a
worker's update calls the worker, at the address of the ps's own cluster spec, fixed when its
server started. A worker serving on the address the ps were told trains; one serving
elsewhere fails its first step, even with the worker's own spec pointing at its new address.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

TASK = r"""
import os, sys
import tensorflow as tf
v1 = tf.compat.v1
v1.disable_eager_execution()
role, ps, told, serves = sys.argv[1], *sys.argv[2:]
port = told if role == "ps" else serves
spec = tf.train.ClusterSpec({"ps": [f"127.0.0.1:{ps}"], "worker": [f"127.0.0.1:{port}"]})
config = v1.ConfigProto(device_filters=["/job:ps", "/job:worker/task:0"])
server = tf.distribute.Server(spec, job_name=role, task_index=0, config=config)
if role == "ps":
    server.join()
with tf.device("/job:ps/task:0"):
    v = v1.get_variable("v", [], initializer=v1.zeros_initializer())
with tf.device("/job:worker/task:0"):
    step = v.assign_add(tf.constant(1.0) * 2.0)
with v1.Session(server.target, config=config) as session:
    session.run(v.initializer)
    print("trained:", session.run(step))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_against_a_ps(same_address: bool) -> subprocess.CompletedProcess[str]:
    ps, told = free_port(), free_port()
    serves = told if same_address else free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    ports = [str(ps), str(told), str(serves)]
    server = subprocess.Popen([sys.executable, "-c", TASK, "ps", *ports], env=env)
    try:
        return subprocess.run(
            [sys.executable, "-c", TASK, "worker", *ports],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.kill()
        server.wait()


@pytest.mark.timeout(300)
def test_the_ps_dial_the_worker_at_the_address_they_were_told():
    same = worker_against_a_ps(same_address=True)
    assert same.returncode == 0 and "trained: 2.0" in same.stdout, same.stderr[-2000:]
    moved = worker_against_a_ps(same_address=False)
    assert moved.returncode != 0
    assert "RecvTensor" in moved.stderr and "/job:ps" in moved.stderr, moved.stderr[-2000:]
