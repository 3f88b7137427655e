#!/usr/bin/env bash
# The feedback flywheel end to end, as the README shows it: a private redis-server, a
# cluster (`ragrelay up`), the gateway, a job, feedback with a corrected answer, the export,
# and `eval qa` over the exported regression set. Prints a transcript on stdout:
#   bash scripts/screens/feedback_flow.sh | .venv/bin/python scripts/screens/term_png.py docs/img/feedback.png
set -euo pipefail
cd "$(dirname "$0")/../.."
RR=${RR:-.venv/bin/ragrelay}
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
http=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --save '' --appendonly no --dir "$tmp" --daemonize yes >/dev/null
export RAGRELAY_REDIS_URL=redis://127.0.0.1:$port/0 RAGRELAY_DATA_DIR=$tmp/data RAGRELAY_LOG_LEVEL=ERROR
cleanup() { kill "$UP" "$SERVE" 2>/dev/null || true; wait 2>/dev/null || true
            redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
$RR up >/dev/null 2>&1 & UP=$!
$RR ingest ragrelay/sample/corpus.jsonl --tenant acme >/dev/null 2>&1  # on the ingest queue
$RR serve --port "$http" >/dev/null 2>&1 & SERVE=$!
for _ in $(seq 120); do curl -sf "localhost:$http/readyz" >/dev/null && break; sleep 1; done

show() { echo "\$ $*"; }
echo "# a cluster (ragrelay up) and the gateway (ragrelay serve) on a private Redis"
KEY=$($RR keys create --tenant acme | tail -1)
show 'KEY=$(ragrelay keys create --tenant acme | tail -1)'
show "curl -s -X POST localhost:8080/v1/jobs -H \"Authorization: Bearer \$KEY\" -d '{\"query\": \"How are transient errors retried?\"}'"
JOB=$(curl -s -X POST "localhost:$http/v1/jobs" -H "Authorization: Bearer $KEY" \
      -H 'Content-Type: application/json' -d '{"query": "How are transient errors retried?"}' | jq -r .job_id)
echo "{\"job_id\": \"$JOB\", \"status\": \"running\", ...}"
for _ in $(seq 120); do
  status=$(curl -s "localhost:$http/v1/jobs/$JOB" -H "Authorization: Bearer $KEY" | jq -r .status)
  [ "$status" != running ] && [ "$status" != queued ] && break; sleep 0.5
done
show 'curl -s localhost:8080/v1/jobs/$JOB -H "Authorization: Bearer $KEY" | jq -c "{status, answer: .result.answer}"'
curl -s "localhost:$http/v1/jobs/$JOB" -H "Authorization: Bearer $KEY" | jq -c '{status, answer: .result.answer}'
echo "# a person corrects the answer"
show "curl -s -X POST localhost:8080/v1/jobs/\$JOB/feedback -H \"Authorization: Bearer \$KEY\" \\"
echo "    -d '{\"rating\": 2, \"comment\": \"name the cap\", \"corrected_answer\": \"With exponential backoff and jitter, capped at 30 s.\"}'"
curl -s -X POST "localhost:$http/v1/jobs/$JOB/feedback" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' \
  -d '{"rating": 2, "comment": "name the cap", "corrected_answer": "With exponential backoff and jitter, capped at 30 s."}' | jq -c .
JOB2=$(curl -s -X POST "localhost:$http/v1/jobs" -H "Authorization: Bearer $KEY" \
       -H 'Content-Type: application/json' -d '{"query": "What is a dead letter?"}' | jq -r .job_id)
for _ in $(seq 120); do
  status=$(curl -s "localhost:$http/v1/jobs/$JOB2" -H "Authorization: Bearer $KEY" | jq -r .status)
  [ "$status" != running ] && [ "$status" != queued ] && break; sleep 0.5
done
echo "# ... and another job's answer is confirmed"
show "curl -s -X POST localhost:8080/v1/jobs/\$JOB2/feedback -H \"Authorization: Bearer \$KEY\" -d '{\"rating\": 5}'"
curl -s -X POST "localhost:$http/v1/jobs/$JOB2/feedback" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' -d '{"rating": 5}' | jq -c .
echo "# feedback becomes a regression set"
show "ragrelay feedback export --since 1d > cases.jsonl && jq -c '{_id, question, answers, reference_kind, rating, job_answer}' cases.jsonl"
$RR feedback export --since 1d > "$tmp/cases.jsonl"
jq -c '{_id, question, answers, reference_kind, rating, job_answer}' "$tmp/cases.jsonl" 2>/dev/null || cat "$tmp/cases.jsonl"
show "ragrelay eval qa --corpus ragrelay/sample/corpus.jsonl --questions cases.jsonl --json"
env -u RAGRELAY_REDIS_URL $RR eval qa --corpus ragrelay/sample/corpus.jsonl --questions "$tmp/cases.jsonl" --json 2>/dev/null \
  | jq -c '{questions, answer_hit, f1, answer_words_mean, iterations_mean}'
