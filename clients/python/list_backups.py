"""List a project's backups through vbs-gateway over TLS, calling with a caller key.

Usage: list_backups.py [ADDRESS [CA_FILE [KEY_FILE [PROJECT_ID]]]], or the variables
VBS_GATEWAY_ADDRESS, VBS_GATEWAY_CA, VBS_GATEWAY_KEY_FILE, VBS_PROJECT_ID.
Needs the stubs of proto/ on PYTHONPATH: python -m grpc_tools.protoc -I proto \
    --python_out=OUT --grpc_python_out=OUT proto/vbs/v2/*.proto
"""

import os
import sys

import grpc
from vbs.v2 import backup_pb2, backup_pb2_grpc


def setting(position, variable, default):
    if len(sys.argv) > position:
        return sys.argv[position]
    return os.environ.get(variable, default)


address = setting(1, "VBS_GATEWAY_ADDRESS", "localhost:50051")
ca_file = setting(2, "VBS_GATEWAY_CA", "ca.pem")
key_file = setting(3, "VBS_GATEWAY_KEY_FILE", "billing.key")
project_id = setting(4, "VBS_PROJECT_ID", "")  # empty: the gateway's default project

with open(ca_file, "rb") as ca:
    credentials = grpc.ssl_channel_credentials(root_certificates=ca.read())
with open(key_file) as key_text:
    key = key_text.read().strip()

with grpc.secure_channel(address, credentials) as channel:
    backups = backup_pb2_grpc.BackupServiceStub(channel)
    try:
        reply = backups.ListBackups(
            backup_pb2.ListBackupsRequest(project_id=project_id),
            metadata=[("authorization", f"Bearer {key}")],
            timeout=10,
        )
    except grpc.RpcError as error:
        print(f"{error.code().name}: {error.details()}", file=sys.stderr)
        sys.exit(1)
    for backup in reply.backups:
        print(backup.id, backup.name)
