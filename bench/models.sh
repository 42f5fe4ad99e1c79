# Sourced by bench/cpu.sh and bench/peer_llamacpp.sh (needs BIN and WORK):
# sets MODEL to the cached default model and makes the benchmark models in
# $WORK once: its Q8_0 and F16 versions (suanli quantize) and random-weight
# llama3.2-1b in Q4_0 / Q8_0 (suanli synth).
mkdir -p "$WORK"
MODEL=$("$BIN" pull default --print-path)
[ -f "$WORK/smollm2-q8_0.gguf" ] || "$BIN" quantize "$MODEL" "$WORK/smollm2-q8_0.gguf" --type q8_0 >/dev/null
[ -f "$WORK/smollm2-f16.gguf" ] || "$BIN" quantize "$MODEL" "$WORK/smollm2-f16.gguf" --type f16 >/dev/null
[ -f "$WORK/llama3.2-1b-q4_0.gguf" ] || "$BIN" synth llama3.2-1b -o "$WORK/llama3.2-1b-q4_0.gguf" --type q4_0 >/dev/null
[ -f "$WORK/llama3.2-1b-q8_0.gguf" ] || "$BIN" synth llama3.2-1b -o "$WORK/llama3.2-1b-q8_0.gguf" --type q8_0 >/dev/null
