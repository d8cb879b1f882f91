# dask-gateway-server configuration for trying the gateway path on one machine:
#
#     dask-gateway-server -f cluster/gateway/config.py
#
# Clusters run as local processes of this user (UnsafeLocalBackend: no isolation between users;
# for a shared deployment use the Kubernetes backend, e.g. the dask/daskhub Helm chart).
# Ports and the shared password come from the environment (defaults below); the test suite
# starts it this way (tests/test_cluster_recipes.py).
import os
import sys

c = get_config()  # noqa: F821 - provided by traitlets when the server loads this file

host = os.environ.get("VEOB_GATEWAY_HOST", "127.0.0.1")
c.DaskGateway.address = f"{host}:{os.environ.get('VEOB_GATEWAY_API_PORT', '8000')}"
c.Proxy.address = f"{host}:{os.environ.get('VEOB_GATEWAY_PORT', '8001')}"
c.Proxy.tcp_address = f"{host}:{os.environ.get('VEOB_GATEWAY_SCHEDULER_PORT', '8786')}"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = os.environ.get("VEOB_GATEWAY_PASSWORD", "change-me")
# dask-gateway-server starts `dask-scheduler` / `dask-worker` by default; distributed no longer
# installs those scripts, so run the modules with this environment's Python (veob_dask in it).
c.ClusterConfig.scheduler_cmd = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
c.ClusterConfig.worker_cmd = [sys.executable, "-m", "distributed.cli.dask_worker"]
c.ClusterConfig.worker_threads = 1
c.ClusterConfig.worker_memory = os.environ.get("VEOB_GATEWAY_WORKER_MEMORY", "2 G")
c.ClusterConfig.environment = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
c.UnsafeLocalBackend.cluster_start_timeout = 120
c.UnsafeLocalBackend.worker_start_timeout = 120
