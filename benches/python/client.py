"""A Python service's calls to VBS, made one way or the other for benches/python.rs.

Routes: `gateway` calls vbs-gateway with grpcio (stubs generated from proto/ into a temporary
folder at start); `direct` calls the VBS REST API itself, signing each request with the official
SDK core (huaweicloudsdkcore's BasicCredentials and Signer) and sending it on one keep-alive
requests.Session, then decoding the JSON answer. Operations: `get` (GetBackup) and `create`
(CreateBackup, a cloud backup of VOLUME_ID).

Usage: client.py --route gateway|direct --address HOST:PORT --project-id ID --backup-id ID
    --volume-id ID [--access-key AK --secret-key-file PATH]   (the last two for `direct`)
Then one command a line on stdin, `OP CALLS` (e.g. `get 250`): the client makes CALLS sequential
calls and answers with one JSON line: calls, failed, first_error, cpu_ns (this process's CPU
time over the calls, every thread included) and latencies_us (one per call, in call order).
"""

import argparse
import importlib.resources
import json
import os
import sys
import tempfile
import time

PROTO_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto")
# The stubs of backup.proto and everything it imports that the protobuf package does not ship.
PROTOS = [
    "vbs/v2/common.proto",
    "vbs/v2/backup.proto",
    "google/api/field_behavior.proto",
    "google/longrunning/operations.proto",
    "google/rpc/status.proto",
]
BACKUP_NAME = "bench-backup"
BACKUP_DESCRIPTION = "python service benchmark"
# What the SDK's own clients send, so the direct request signs the headers a real SDK call signs.
SDK_USER_AGENT = "huaweicloud-usdk-python/3.0"
TIMEOUT_SECONDS = 10


def generate_stubs(out_dir):
    """grpc_tools.protoc over proto/, with protobuf's own well-known types on the import path."""
    from grpc_tools import protoc

    well_known = importlib.resources.files("grpc_tools") / "_proto"
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}"]
    if protoc.main(args + PROTOS) != 0:
        sys.exit("protoc failed to generate the stubs")
    sys.path.insert(0, out_dir)


class Gateway:
    """Calls through vbs-gateway: one grpcio channel, typed protobuf messages."""

    def __init__(self, options):
        import grpc
        from vbs.v2 import backup_pb2, backup_pb2_grpc

        self.errors = (grpc.RpcError,)
        self.messages = backup_pb2
        self.channel = grpc.insecure_channel(options.address)
        self.stub = backup_pb2_grpc.BackupServiceStub(self.channel)
        self.backup_id = options.backup_id
        self.volume_id = options.volume_id

    def get(self):
        reply = self.stub.GetBackup(self.messages.GetBackupRequest(backup_id=self.backup_id), timeout=TIMEOUT_SECONDS)
        return reply.backup.status

    def create(self):
        request = self.messages.CreateBackupRequest(
            volume_id=self.volume_id, name=BACKUP_NAME, description=BACKUP_DESCRIPTION
        )
        return self.stub.CreateBackup(request, timeout=TIMEOUT_SECONDS).job_id


class CallFailed(Exception):
    pass


class Direct:
    """Calls VBS itself: every request signed by the SDK core, sent on one requests.Session."""

    def __init__(self, options):
        import requests
        from huaweicloudsdkcore.auth.credentials import BasicCredentials
        from huaweicloudsdkcore.sdk_request import SdkRequest

        with open(options.secret_key_file) as file:
            secret_key = file.read().strip()
        self.errors = (requests.RequestException, CallFailed, ValueError, KeyError)
        self.request_type = SdkRequest
        self.credentials = BasicCredentials(options.access_key, secret_key, options.project_id)
        self.session = requests.Session()
        self.host = options.address
        self.project_id = options.project_id
        self.backup_id = options.backup_id
        self.volume_id = options.volume_id

    def send(self, method, path, body):
        """Signs as the SDK's clients do (BasicCredentials adds X-Project-Id, the Signer Host,
        X-Sdk-Date and Authorization), sends, and decodes the JSON answer."""
        request = self.request_type(
            method=method,
            schema="http",
            host=self.host,
            resource_path=path,
            query_params=[],
            header_params={"Content-Type": "application/json", "User-Agent": SDK_USER_AGENT},
            body=body,
        )
        self.credentials.sign_request(request)
        response = self.session.request(
            method, request.url, headers=request.header_params, data=request.body, timeout=TIMEOUT_SECONDS
        )
        if response.status_code >= 300:
            raise CallFailed(f"HTTP {response.status_code}: {response.text[:300]}")
        return response.json()

    def get(self):
        return self.send("GET", f"/v2/{self.project_id}/backups/{self.backup_id}", None)["backup"]["status"]

    def create(self):
        body = {"backup": {"volume_id": self.volume_id, "name": BACKUP_NAME, "description": BACKUP_DESCRIPTION}}
        return self.send("POST", f"/v2/{self.project_id}/cloudbackups", json.dumps(body))["job_id"]


def error_text(error):
    """A gRPC error by its code and message; any other by its type and text."""
    if hasattr(error, "code") and hasattr(error, "details"):
        return f"{error.code().name}: {error.details()}"
    return f"{type(error).__name__}: {error}"[:500]


def run_block(client, operation, calls):
    """CALLS sequential calls, each timed; CPU read around the whole block."""
    call = {"get": client.get, "create": client.create}[operation]
    latencies_us, failed, first_error = [], 0, None
    cpu_started = time.process_time_ns()
    for _ in range(calls):
        started = time.perf_counter_ns()
        try:
            call()
        except client.errors as error:
            failed += 1
            first_error = first_error or error_text(error)
        latencies_us.append(round((time.perf_counter_ns() - started) / 1e3, 1))
    cpu_ns = time.process_time_ns() - cpu_started
    return {"calls": calls, "failed": failed, "first_error": first_error, "cpu_ns": cpu_ns, "latencies_us": latencies_us}


def parse_options():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--route", choices=["gateway", "direct"], required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--project-id", required=True)
    parser.add_argument("--backup-id", required=True)
    parser.add_argument("--volume-id", required=True)
    parser.add_argument("--access-key")
    parser.add_argument("--secret-key-file")
    options = parser.parse_args()
    if options.route == "direct" and not (options.access_key and options.secret_key_file):
        parser.error("the direct route needs --access-key and --secret-key-file")
    return options


def main():
    options = parse_options()
    with tempfile.TemporaryDirectory() as stubs:
        if options.route == "gateway":
            generate_stubs(stubs)
            client = Gateway(options)
        else:
            client = Direct(options)
        for line in sys.stdin:
            operation, calls = line.split()
            print(json.dumps(run_block(client, operation, int(calls))), flush=True)


if __name__ == "__main__":
    main()
