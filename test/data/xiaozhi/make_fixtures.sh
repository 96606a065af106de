#!/bin/sh
# Regenerates the Opus packet fixtures (.opk, format in XZ-INTERFACE.md) of
# the xiaozhi tests from synthetic speech. Needs espeak-ng, sox, opusenc
# (Debian: espeak-ng sox opus-tools) and /usr/bin/python3.
#
#   speech_16k_60ms.opk   uplink as firmware 2.4 sends it: 16 kHz mono,
#                         60 ms frames, DTX on: 0.3 s silence, a spoken
#                         sentence, then 2 s of silence (DTX-size packets)
#   speech_16k_20ms.opk   the same at 20 ms frames (desktop-client uplink)
#   silence_16k_60ms.opk  3 s of silence only (every packet DTX-size)
#   tts_24k_60ms.opk      a downlink reply for the scripted TTS: 24 kHz mono,
#                         60 ms frames, no DTX, no trailing silence
#   tts_16k_60ms.opk      the same reply at 16 kHz
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for p in espeak-ng sox opusenc; do
  command -v $p >/dev/null || { echo "make_fixtures.sh: $p is missing" >&2; exit 1; }
done

# Uplink encoder settings of the firmware (PROTOCOL.md 10.3): application
# audio, VBR, complexity 0, DTX on (OPUS_SET_DTX_REQUEST = 4016). opusenc
# always runs its encoder at 48 kHz, so the bandwidth is capped
# (OPUS_SET_MAX_BANDWIDTH_REQUEST = 4004) at wideband (1103) for 16 kHz
# streams and super-wideband (1104) for 24 kHz ones, giving the packet
# configurations a 16 or 24 kHz encoder makes.
up() { opusenc --quiet --vbr --comp 0 --bitrate 16 --framesize "$1" \
         --set-ctl-int 4016=1 --set-ctl-int 4004=1103 "$2" "$3"; }
down() { opusenc --quiet --vbr --comp 10 --bitrate 24 --framesize 60 \
         --set-ctl-int 4004="$1" "$2" "$3"; }

espeak-ng -v en-us -s 150 -w "$tmp/say.wav" \
  "Hello, what is the weather like in Berlin today?"
# 16 kHz mono 16-bit, 0.3 s lead-in silence, 2 s trailing silence
sox "$tmp/say.wav" -r 16000 -c 1 -b 16 "$tmp/up.wav" pad 0.3 2.0
sox -n -r 16000 -c 1 -b 16 "$tmp/sil.wav" trim 0.0 3.0

espeak-ng -v en-us -s 160 -w "$tmp/reply.wav" \
  "Hi there. It is sunny, around twenty degrees. Anything else?"
sox "$tmp/reply.wav" -r 24000 -c 1 -b 16 "$tmp/r24.wav"
sox "$tmp/reply.wav" -r 16000 -c 1 -b 16 "$tmp/r16.wav"

up 60 "$tmp/up.wav" "$tmp/up60.opus"
up 20 "$tmp/up.wav" "$tmp/up20.opus"
up 60 "$tmp/sil.wav" "$tmp/sil60.opus"
down 1104 "$tmp/r24.wav" "$tmp/r24.opus"
down 1103 "$tmp/r16.wav" "$tmp/r16.opus"

x() { /usr/bin/python3 "$here/ogg2opk.py" "$1" "$here/$2"; }
x "$tmp/up60.opus" speech_16k_60ms.opk
x "$tmp/up20.opus" speech_16k_20ms.opk
x "$tmp/sil60.opus" silence_16k_60ms.opk
x "$tmp/r24.opus" tts_24k_60ms.opk
x "$tmp/r16.opus" tts_16k_60ms.opk
echo "fixtures written to $here"
