// A Node.js client of vbs-gateway as an application would write one, run by the gateway's tests.
// Usage: node client.js ADDRESS VOLUME_ID BACKUP_NAME (plaintext gRPC, no caller key). Loads
// proto/ at run time with @grpc/proto-loader, then: creates a backup, watches its job to the end,
// reads the operation's typed response and the backup, pages through ListBackups and decodes an
// error's details; and shows what proto-loader's default options do to a snake_case request.
'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', '..', 'proto');
const PROTOS = ['vbs/v2/backup.proto', 'vbs/v2/job.proto', 'google/longrunning/operations.proto'];

// The options the README explains: field names as the .proto writes them (volume_id, not
// volumeId), int64 as decimal strings (no Long objects), enums by name, every field present
// (empty string, 0, [] when unset), and for each oneof a property naming the field that is set.
const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};
const DEADLINE_MS = 10_000;

function services(options) {
  const loaded = grpc.loadPackageDefinition(protoLoader.loadSync(PROTOS, options));
  return { vbs: loaded.vbs.v2, longrunning: loaded.google.longrunning };
}

// protobufjs types for what arrives packed: status details and Any payloads.
function messageTypes() {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(PROTO_ROOT, target);
  root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto', ...PROTOS], { keepCase: true });
  return root;
}

function unpack(types, any) {
  const type = types.lookupType(any.type_url.slice(any.type_url.lastIndexOf('/') + 1));
  const message = type.toObject(type.decode(any.value), { longs: String, enums: String, defaults: true });
  return { name: type.fullName.replace(/^\./, ''), message };
}

function unary(client, method, request) {
  const deadline = Date.now() + DEADLINE_MS;
  return new Promise((resolve, reject) => {
    client[method](request, { deadline }, (error, reply) => (error ? reject(error) : resolve(reply)));
  });
}

// Every job state the stream sends; it ends (OK) after the terminal one.
async function watchToEnd(jobs, jobId) {
  const states = [];
  const stream = jobs.WatchJob({ job_id: jobId }, { deadline: Date.now() + 60_000 });
  for await (const event of stream) {
    if (event.event === 'job') {
      states.push(event.job);
    }
  }
  return states;
}

// The google.rpc.Status a failed call carries in grpc-status-details-bin, details unpacked.
function statusDetails(types, error) {
  const [bytes] = error.metadata.get('grpc-status-details-bin');
  if (!bytes) {
    throw new Error(`no status details on ${error.code}: ${error.details}`);
  }
  const Status = types.lookupType('google.rpc.Status');
  return Status.decode(bytes).details.map((any) => unpack(types, any));
}

function describeError(types, error) {
  const details = statusDetails(types, error);
  const info = details.find((d) => d.name === 'google.rpc.ErrorInfo').message;
  const badRequest = details.find((d) => d.name === 'google.rpc.BadRequest');
  const violations = badRequest
    ? badRequest.message.field_violations.map((v) => `${v.field} (${v.description}, ${v.reason})`)
    : [];
  return `${grpc.status[error.code]} reason ${info.reason} domain ${info.domain} violations ${violations.join(' ')}`;
}

async function createAndWatch(vbs, longrunning, types, address, volumeId, name) {
  const credentials = grpc.credentials.createInsecure();
  const backups = new vbs.BackupService(address, credentials);
  const jobs = new vbs.JobService(address, credentials);
  const operations = new longrunning.Operations(address, credentials);

  const created = await unary(backups, 'CreateBackup', { volume_id: volumeId, name });
  console.log(`created: job ${created.job_id} operation ${created.operation.name} done=${created.operation.done}`);
  const states = await watchToEnd(jobs, created.job_id);
  const last = states[states.length - 1];
  console.log(`watched: ${states.map((s) => s.status).join(' ')} (backup ${last.backup.backup_id})`);

  const operation = await unary(operations, 'GetOperation', { name: created.operation.name });
  const response = unpack(types, operation.response);
  const backup = response.message;
  console.log(`operation: done=${operation.done} result=${operation.result}, response ${response.name} ${backup.id} ${backup.name} ${backup.status}`);

  const got = (await unary(backups, 'GetBackup', { backup_id: backup.id })).backup;
  console.log(`got: ${got.id} ${got.name} ${got.status} size ${got.size} (${typeof got.size})`);
  return backups;
}

async function listAll(backups, pageSize) {
  const names = [];
  let pages = 0;
  let token = '';
  do {
    const page = await unary(backups, 'ListBackups', { page_size: pageSize, page_token: token });
    pages += 1;
    names.push(...page.backups.map((b) => b.name));
    console.log(`page: ${page.backups.map((b) => b.name).join(' ')}`);
    token = page.next_page_token;
  } while (token);
  console.log(`listed: ${names.length} backups in ${pages} pages: ${names.sort().join(' ')}`);
}

async function expectRejected(backups, request) {
  try {
    await unary(backups, 'CreateBackup', request);
  } catch (error) {
    return error;
  }
  throw new Error(`CreateBackup(${JSON.stringify(request)}) succeeded`);
}

async function main() {
  const [address, volumeId, name] = process.argv.slice(2);
  if (!name) {
    throw new Error('usage: node client.js ADDRESS VOLUME_ID BACKUP_NAME');
  }
  const types = messageTypes();
  const { vbs, longrunning } = services(LOADER_OPTIONS);
  const backups = await createAndWatch(vbs, longrunning, types, address, volumeId, name);
  await listAll(backups, 2);

  const invalid = await expectRejected(backups, { name: 'no-volume' });
  console.log(`error: ${describeError(types, invalid)}`);

  // With proto-loader's defaults the fields are camelCase: a snake_case key is dropped unseen.
  const defaults = services({ includeDirs: [PROTO_ROOT] }).vbs;
  const camel = new defaults.BackupService(address, grpc.credentials.createInsecure());
  const dropped = await expectRejected(camel, { volume_id: volumeId, name: 'snake-case' });
  console.log(`default options: ${grpc.status[dropped.code]} ${dropped.details}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
