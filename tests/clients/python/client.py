"""A Python client of vbs-gateway as an application would write one, run by the gateway's tests.

Usage: client.py ADDRESS VOLUME_ID BACKUP_NAME (plaintext gRPC, no caller key). Generates the
stubs of proto/vbs/v2 into a temporary folder first (grpcio-tools); google.longrunning,
google.rpc and google.api come compiled from googleapis-common-protos, after checking that the
gateway's google/longrunning/operations.proto matches theirs on the wire. Then: creates a
backup, follows it both with google-api-core's operation helper and with WatchJob, reads the
backup, pages through ListBackups and decodes an error's details. Prints one line per step.
"""

import importlib.resources
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

PROTO_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "proto")
VBS_PROTOS = ["vbs/v2/common.proto", "vbs/v2/backup.proto", "vbs/v2/backup_policy.proto", "vbs/v2/job.proto"]
OPERATIONS_PROTO = "google/longrunning/operations.proto"


def protoc(*args):
    """grpc_tools.protoc with proto/ and protobuf's own well-known types on the import path."""
    from grpc_tools import protoc as grpc_protoc

    well_known = importlib.resources.files("grpc_tools") / "_proto"
    if grpc_protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", *args]) != 0:
        sys.exit(f"protoc {' '.join(args)} failed")


def generate_stubs(out_dir):
    """Message and service stubs of vbs/v2 only: the google/* they import come from
    googleapis-common-protos, so one definition of each google type is loaded."""
    protoc(f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *VBS_PROTOS)
    sys.path.insert(0, out_dir)
    print(f"stubs: {len(VBS_PROTOS)} files of vbs/v2 generated")


def wire_shape(file_proto):
    """What decides the bytes on the wire: each message's fields by number (name, type, label,
    message type) and each method's input, output and streaming."""
    messages = {
        message.name: {
            field.number: (field.name, field.type, field.label, field.type_name) for field in message.field
        }
        for message in file_proto.message_type
    }
    methods = {
        f"{service.name}.{method.name}": (
            method.input_type,
            method.output_type,
            method.client_streaming,
            method.server_streaming,
        )
        for service in file_proto.service
        for method in service.method
    }
    return messages, methods


def check_operations_wire(out_dir):
    """Everything the gateway's operations.proto says must read the same in googleapis-common-protos'
    copy, which google-api-core uses; theirs may say more (newer fields, extensions, options)."""
    from google.longrunning import operations_proto_pb2
    from google.protobuf import descriptor_pb2

    descriptor_set = os.path.join(out_dir, "operations.binpb")
    protoc(f"--descriptor_set_out={descriptor_set}", OPERATIONS_PROTO)
    with open(descriptor_set, "rb") as file:
        ours = descriptor_pb2.FileDescriptorSet.FromString(file.read()).file[0]
    theirs = descriptor_pb2.FileDescriptorProto()
    operations_proto_pb2.DESCRIPTOR.CopyToProto(theirs)
    assert ours.package == theirs.package, (ours.package, theirs.package)
    our_messages, our_methods = wire_shape(ours)
    their_messages, their_methods = wire_shape(theirs)
    only_theirs = []
    for name, fields in our_messages.items():
        their_fields = their_messages.get(name)
        assert their_fields is not None, f"message {name} is not in googleapis-common-protos"
        for number, field in fields.items():
            assert their_fields.get(number) == field, f"{name} field {number}: {field} vs {their_fields.get(number)}"
        only_theirs += [f"{name}.{f[0]}" for n, f in their_fields.items() if n not in fields]
    for name, shape in our_methods.items():
        assert their_methods.get(name) == shape, f"rpc {name}: {shape} vs {their_methods.get(name)}"
    print(f"operations.proto: wire-compatible with googleapis-common-protos "
          f"({len(our_messages)} messages, {len(our_methods)} methods; "
          f"fields only theirs have: {' '.join(only_theirs) or 'none'})")


def watch_to_end(jobs, job_pb2, job_id):
    """Every job state WatchJob sends until the stream ends (after the terminal state)."""
    states = []
    for event in jobs.WatchJob(job_pb2.WatchJobRequest(job_id=job_id), timeout=60):
        if event.WhichOneof("event") == "job":
            states.append(event.job)
    return states


def create_and_follow(channel, volume_id, name):
    """CreateBackup, then the job followed two ways at once: the operation helper's result()
    (which polls GetOperation) and a WatchJob stream. Returns the backup's id."""
    from google.api_core import operation, operations_v1
    from vbs.v2 import backup_pb2, backup_pb2_grpc, job_pb2, job_pb2_grpc

    backups = backup_pb2_grpc.BackupServiceStub(channel)
    jobs = job_pb2_grpc.JobServiceStub(channel)
    created = backups.CreateBackup(backup_pb2.CreateBackupRequest(volume_id=volume_id, name=name), timeout=10)
    done = str(created.operation.done).lower()
    print(f"created: job {created.job_id} operation {created.operation.name} done={done}")

    with ThreadPoolExecutor(max_workers=1) as pool:
        watching = pool.submit(watch_to_end, jobs, job_pb2, created.job_id)
        future = operation.from_gapic(
            created.operation,
            operations_v1.OperationsClient(channel),
            backup_pb2.Backup,
            metadata_type=job_pb2.Job,
        )
        backup = future.result(timeout=60)
        states = watching.result(timeout=60)

    job = future.metadata
    print(f"operation: done, response {backup.DESCRIPTOR.full_name} {backup.id} {backup.name} "
          f"{backup_pb2.BackupStatus.Name(backup.status)}, metadata job {job.job_id} "
          f"{job_pb2.JobStatus.Name(job.status)}")
    last = states[-1]
    print(f"watched: {' '.join(job_pb2.JobStatus.Name(s.status) for s in states)} "
          f"(backup {last.backup.backup_id})")
    return backup.id


def read_backup(channel, backup_id):
    from vbs.v2 import backup_pb2, backup_pb2_grpc

    backups = backup_pb2_grpc.BackupServiceStub(channel)
    backup = backups.GetBackup(backup_pb2.GetBackupRequest(backup_id=backup_id), timeout=10).backup
    print(f"got: {backup.id} {backup.name} {backup_pb2.BackupStatus.Name(backup.status)} size {backup.size}")


def list_all(channel, page_size):
    """ListBackups page by page until next_page_token is empty."""
    from vbs.v2 import backup_pb2, backup_pb2_grpc

    backups = backup_pb2_grpc.BackupServiceStub(channel)
    names, pages, token = [], 0, ""
    while True:
        request = backup_pb2.ListBackupsRequest(page_size=page_size, page_token=token)
        page = backups.ListBackups(request, timeout=10)
        pages += 1
        names += [summary.name for summary in page.backups]
        print(f"page: {' '.join(summary.name for summary in page.backups)}")
        token = page.next_page_token
        if not token:
            break
    print(f"listed: {len(names)} backups in {pages} pages: {' '.join(sorted(names))}")


def decode_error(channel):
    """An invalid CreateBackup (no volume_id): the status details say why, field by field."""
    import grpc
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status
    from vbs.v2 import backup_pb2, backup_pb2_grpc

    backups = backup_pb2_grpc.BackupServiceStub(channel)
    try:
        backups.CreateBackup(backup_pb2.CreateBackupRequest(name="no-volume"), timeout=10)
    except grpc.RpcError as error:
        status = rpc_status.from_call(error)
        info, violations = None, []
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                violations += [f"{v.field} ({v.description}, {v.reason})" for v in bad_request.field_violations]
        print(f"error: {error.code().name} reason {info.reason} domain {info.domain} "
              f"violations {' '.join(violations)}")
        return
    sys.exit("CreateBackup without a volume_id succeeded")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    address, volume_id, name = sys.argv[1:]
    import grpc

    with tempfile.TemporaryDirectory() as out_dir:
        generate_stubs(out_dir)
        check_operations_wire(out_dir)
        with grpc.insecure_channel(address) as channel:
            backup_id = create_and_follow(channel, volume_id, name)
            read_backup(channel, backup_id)
            list_all(channel, page_size=2)
            decode_error(channel)


if __name__ == "__main__":
    main()
