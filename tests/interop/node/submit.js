// A foreign Celery client: celery-node sends `ragrelay.submit` with JobRequest payloads to
// the `orchestrator` queue through Redis and reads each result from the Redis result backend
// (`celery-task-meta-<task id>`). Nothing here knows ragrelay beyond the documented contract.
//
// Usage: node submit.js <redis url> <task protocol 1|2> '<JSON array of payloads>' [timeout ms]
// Prints one JSON array: [{"task_id": ..., "result": <JobResult>}, ...]
"use strict";
const celery = require("celery-node");

async function main() {
  const [brokerUrl, protocol, payloadsJson, timeoutMs = "60000"] = process.argv.slice(2);
  const client = celery.createClient(brokerUrl, brokerUrl, "orchestrator");
  client.conf.TASK_PROTOCOL = Number(protocol);
  const task = client.createTask("ragrelay.submit");
  const sent = JSON.parse(payloadsJson).map((payload) => task.applyAsync([payload]));
  try {
    const results = await Promise.all(sent.map((r) => r.get(Number(timeoutMs))));
    const out = sent.map((r, i) => ({ task_id: r.taskId, result: results[i] }));
    process.stdout.write(JSON.stringify(out) + "\n");
  } finally {
    await client.disconnect();
  }
}

main().catch((err) => {
  process.stderr.write(`celery-node client failed: ${err && err.message}\n`);
  process.exit(1);
});
