#!/bin/bash
# The full-size (224x224) cross-check of every model under every quantized shipped config, one line
# each: exit status, differing/explained/unexplained element counts in float32 and float64, the
# optimized backend's agreement, and the wall time. Used for the figures in docs/harness.md.
set -u
qverify=${QVERIFY:-build/cli/qverify}
for model in mobilenet_v1 proxylessnas_mobile14 proxylessnas_mobile14_hadamard vgg16 vgg16_bn mobilenet_v2; do
  for config in pact.json tqt.json brevitas_4b.json brevitas_8b.json; do
    start=$(date +%s.%N)
    "$qverify" --model "$model" --config "$config" --json > /tmp/qverify_full.json 2>/dev/null
    status=$?
    end=$(date +%s.%N)
    python3 - "$model" "$config" "$status" "$start" "$end" <<'PY'
import json, sys
model, config, status, start, end = sys.argv[1:]
try:
    j = json.load(open('/tmp/qverify_full.json'))
except Exception:
    print(f"{model:32s} {config:18s} exit {status} (no report)"); sys.exit()
f, d, o = j['float32'], j['float64'], j['optimized']
print(f"{model:32s} {config:18s} exit {status}  float32 {f['differing']:>8} differ / {f['explained']:>8} explained / "
      f"{f['unexplained']} unexplained of {f['elements']}  float64 {d['differing']:>7} / {d['unexplained']} unexplained  "
      f"optimized {o['differing_nodes']}/{o['nodes']} nodes differ  {float(end) - float(start):6.1f} s")
PY
  done
done
