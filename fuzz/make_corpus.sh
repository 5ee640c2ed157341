#!/usr/bin/env bash
# Writes the seed corpora fuzz/corpus/frame_decoder/ and
# fuzz/corpus/frame_roundtrip/ (overwriting these seeds, leaving any other
# file, such as a crash reproducer, alone).
#
# A seed is laid out as its target consumes it through FuzzedDataProvider
# (see the comments at the top of fuzz/frame_decoder.cpp,
# fuzz/frame_roundtrip.cpp and fuzz/fuzz_spec.h): byte strings from the
# front, integers from the end. seed() takes the front bytes and then the
# integer fields in the order the target consumes them, and writes the fields
# last-consumed first, each in FuzzedDataProvider's byte order (little-endian
# in the file).
#
# Check a seed's meaning with the replay build:
#   EAGAIN_FUZZ_VERBOSE=1 build/dev/fuzz/fuzz_frame_decoder_replay fuzz/corpus/frame_decoder/NAME
set -euo pipefail

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# --- hex tokens ---------------------------------------------------------------
# Every helper prints space-separated two-digit hex bytes.

be() {  # be WIDTH VALUE: VALUE big-endian in WIDTH bytes
    local width=$1 value=$2 i
    for ((i = width - 1; i >= 0; i--)); do printf '%02x ' $(((value >> (8 * i)) & 0xff)); done
}
le() {  # le WIDTH VALUE: VALUE little-endian in WIDTH bytes
    local width=$1 value=$2 i
    for ((i = 0; i < width; i++)); do printf '%02x ' $(((value >> (8 * i)) & 0xff)); done
}
text() { printf '%s' "$1" | od -An -v -tx1 | tr -s ' \n' '  '; }
repeat() {  # repeat COUNT TOKENS
    local count=$1 i
    shift
    for ((i = 0; i < count; i++)); do printf '%s ' "$@"; done
}
# The default protocol's 20-byte header: cmd, seq, body_len, reserved1, reserved2.
default_header() { be 4 "$1"; be 4 "$2"; be 4 "$3"; be 4 0; be 4 0; }

# --- seeds --------------------------------------------------------------------

# seed DIR NAME FRONT FIELD... : FRONT, then the FIELDs (given in consumption
# order, each as its file bytes) in reverse order.
seed() {
    local dir=$1 name=$2 front=$3
    shift 3
    local fields=("$@") tokens=$front i token
    for ((i = ${#fields[@]} - 1; i >= 0; i--)); do tokens+=" ${fields[i]}"; done
    mkdir -p "$fuzz_dir/corpus/$dir"
    local escaped=''
    for token in $tokens; do escaped+="\\x$token"; done
    printf "$escaped" >"$fuzz_dir/corpus/$dir/$name"
}

# Fields of a fuzzed spec (fuzz/fuzz_spec.h), one per line, in consumption
# order: spec WIDTH HEADER OFFSET FLAGS ADJUSTMENT_KIND [ADJ] MAX_KIND [MAX]
# where FLAGS is 0 (big endian, signed), 1 little endian, 2 unsigned, 3 both,
# and the kinds' extra values are given as le tokens.
spec() {
    local width=$1 header=$2 offset=$3 flags=$4 width_index
    case $width in 1) width_index=0 ;; 2) width_index=1 ;; 4) width_index=2 ;; 8) width_index=3 ;; esac
    le 1 "$width_index"; echo
    le 1 $((header - width)); echo
    le 1 "$offset"; echo
    le 1 "$flags"; echo
    shift 4
    for field in "$@"; do echo "$field"; done
}

# chunks SIZE...: one chunk-size field per chunk (255 = the rest).
chunks() { for size in "$@"; do le 1 "$size"; echo; done; }

decoder() {  # decoder NAME STREAM MODE [SPEC_FIELDS...] -- CHUNK_FIELDS...
    local name=$1 stream=$2 mode=$3
    shift 3
    local fields=("$(le 1 "$mode")")
    while (($# > 0)) && [[ $1 != -- ]]; do fields+=("$1"); shift; done
    shift
    fields+=("$@")
    seed frame_decoder "$name" "$stream" "${fields[@]}"
}

# --- frame_decoder seeds --------------------------------------------------------
# mode 0x00: FrameSpec{} with FrameDecoder's default buffer limit.

hello="$(default_header 1 1 5)$(text hello)"
empty="$(default_header 2 2 0)"
abc="$(default_header 3 3 3)$(text abc)"
mapfile -t rest < <(chunks 255)

decoder default-one-frame "$hello" 0 -- "${rest[@]}"
decoder default-empty-body "$empty" 0 -- "${rest[@]}"
decoder default-three-frames "$hello$empty$abc" 0 -- "${rest[@]}"
mapfile -t ones < <(chunks $(repeat 68 1))
decoder default-three-frames-byte-by-byte "$hello$empty$abc" 0 -- "${ones[@]}"
mapfile -t mixed < <(chunks 0 1 7 0 19 2 0 255)
decoder default-three-frames-mixed-chunks "$hello$empty$abc" 0 -- "${mixed[@]}"
decoder default-half-header "$(be 4 1) $(be 4 7) $(be 2 0)" 0 -- "${rest[@]}"
decoder default-half-frame "$(default_header 1 1 100)$(repeat 30 61)" 0 -- "${rest[@]}"
decoder default-negative-length "$(default_header 1 1 0x80000000)" 0 -- "${rest[@]}"
decoder default-length-ffffffff "$(default_header 1 1 0xffffffff)" 0 -- "${rest[@]}"
decoder default-largest-frame-announced "$(default_header 1 1 $((16 * 1024 * 1024 - 20)))" 0 -- "${rest[@]}"
decoder default-too-large "$(default_header 1 1 $((16 * 1024 * 1024 - 19)))" 0 -- "${rest[@]}"
decoder default-frame-then-negative "$hello$(default_header 9 9 0x80000000)$abc" 0 -- "${rest[@]}"
mapfile -t two_chunks < <(chunks 34 255)
decoder default-negative-split-in-length-field "$hello$(default_header 9 9 0xfffffff0)" 0 -- "${two_chunks[@]}"
# A 10000-byte body in 254-byte chunks: the buffer grows past its first
# 4096 bytes, twice, while holding a partial frame.
mapfile -t chunks254 < <(chunks $(repeat 39 254) 255)
decoder default-10k-body-in-chunks "$(default_header 5 5 10000)$(repeat 10000 5a)" 0 -- "${chunks254[@]}"
decoder default-tight-buffer-limit "$hello$empty$abc" 1 -- "${rest[@]}"
decoder empty-stream "" 0 --

# mode 0xc0..0xc3: fuzzed spec; mode & 3 is the buffer limit.

# 1-byte signed length at offset 0 of a 1-byte header; 0x80 is negative.
mapfile -t s < <(spec 1 1 0 0 "$(le 1 0)" "$(le 1 0)")
decoder u8-header1 "03 $(text abc) 00 02 $(text xy) 80" 0xc0 "${s[@]}" -- "${rest[@]}"
# 1-byte unsigned: 0xff is 255 bytes of body.
mapfile -t s < <(spec 1 1 0 2 "$(le 1 0)" "$(le 1 0)")
decoder u8-unsigned "ff $(repeat 255 7a) 01 00" 0xc0 "${s[@]}" -- "${rest[@]}"
# 2-byte little-endian length at offset 2 of a 6-byte header, counting the
# whole frame (adjustment -header), max frame 6 + 255; then a length of 5,
# shorter than the header.
mapfile -t s < <(spec 2 6 2 1 "$(le 1 3)" "$(le 1 2)" "$(le 1 255)")
mapfile -t short_mixed < <(chunks 0 1 3 0 5 255)
decoder u16le-counts-whole-frame "aa bb 0a 00 cc dd $(text body) aa bb 05 00 cc dd" 0xc0 "${s[@]}" -- "${short_mixed[@]}"
# 4-byte big-endian length at offset 4 of a 12-byte header counting what
# follows the field (adjustment -4), max 12 + 256.
mapfile -t s < <(spec 4 12 4 0 "$(le 1 4)" "$(le 1 3)" "$(le 2 256)")
decoder u32-counts-after-field "$(be 4 7) $(be 4 4) $(be 4 0) $(be 4 9) $(be 4 8) $(be 4 0) $(text xyzw)" 0xc0 "${s[@]}" -- "${rest[@]}"
# 8-byte unsigned big-endian length, adjustment INT64_MAX, max PTRDIFF_MAX:
# 0xff.. overflows 64 bits, 0 announces a frame past max_frame_bytes.
mapfile -t s < <(spec 8 8 0 2 "$(le 1 6)" "$(le 1 5)")
decoder u64-adjust-int64-max-overflow "$(repeat 8 ff)" 0xc0 "${s[@]}" -- "${rest[@]}"
decoder u64-adjust-int64-max-too-large "$(repeat 8 00)" 0xc0 "${s[@]}" -- "${rest[@]}"
# 8-byte signed little-endian, adjustment INT64_MIN: shorter than the header.
mapfile -t s < <(spec 8 16 8 1 "$(le 1 5)" "$(le 1 5)")
decoder u64le-adjust-int64-min "$(repeat 8 00) $(repeat 7 ff) 7f" 0xc0 "${s[@]}" -- "${rest[@]}"
# 8-byte signed, adjustment -1 as an arbitrary i64, max from an arbitrary u64.
mapfile -t s < <(spec 8 10 1 0 "$(le 1 7)" "$(le 8 -1)" "$(le 1 6)" "$(le 8 1000)")
decoder u64-adjust-minus-one "00 $(be 8 4) 00 $(text abc)" 0xc0 "${s[@]}" -- "${rest[@]}"
# 4-byte unsigned, max 2^32 + 8: 0xffffffff is legal and leaves ~4 GiB
# missing, which must not be allocated up front.
mapfile -t s < <(spec 4 4 0 2 "$(le 1 0)" "$(le 1 7)" "$(le 1 8)")
decoder u32-unsigned-4gib-announced "ff ff ff ff $(text partial)" 0xc0 "${s[@]}" -- "${rest[@]}"
# 2-byte length, max frame 2 + 30, buffer limit exactly max_frame_bytes: a
# 96-byte chunk does not fit and is fed as backpressure allows.
mapfile -t s < <(spec 2 2 0 0 "$(le 1 0)" "$(le 1 2)" "$(le 1 30)")
decoder u16-backpressure "$(repeat 8 "00 0a $(repeat 10 42)")" 0xc1 "${s[@]}" -- "${rest[@]}"
# Same spec, buffer limit max_frame + 3 and chunks alternating feed/prepare.
mapfile -t s3 < <(spec 2 2 0 0 "$(le 1 0)" "$(le 1 2)" "$(le 1 30)"; le 1 3; echo)
mapfile -t c < <(chunks 40 40 255)
decoder u16-backpressure-limit-plus-3 "$(repeat 8 "00 0a $(repeat 10 42)")" 0xc2 "${s3[@]}" -- "${c[@]}"
# Adjustment +3 (a u8) with max frame = header: every frame is too_large.
mapfile -t s < <(spec 2 4 1 0 "$(le 1 1)" "$(le 1 3)" "$(le 1 1)")
decoder u16-adjust-plus3-max-is-header "00 00 00 00" 0xc0 "${s[@]}" -- "${rest[@]}"
# Adjustment -u8 (-2), max from a u32 (header + 4096).
mapfile -t s < <(spec 2 4 2 3 "$(le 1 2)" "$(le 1 2)" "$(le 1 4)" "$(le 4 4096)")
decoder u16le-unsigned-adjust-minus2 "aa bb 05 00 $(text xyz) aa bb 01 00" 0xc3 "${s[@]}" "$(le 2 300)" -- "${short_mixed[@]}"

# --- frame_roundtrip seeds ------------------------------------------------------
# Fields after the spec: [limit], chunking, then per frame a code (and for
# code 255 a u16 body size); headers and bodies come from the front.

roundtrip() {  # roundtrip NAME FRONT FIELD...
    seed frame_roundtrip "$@"
}

roundtrip default-two-frames "$(repeat 20 00) $(text hello) $(repeat 20 11)" "00" "03" "05" "00"
roundtrip default-byte-chunks "$(repeat 20 01) $(text abc) $(repeat 20 02) $(text de)" "00" "00" "03" "02"
roundtrip default-output-limit-40 "$(repeat 20 00) $(text hello) $(repeat 20 00) $(text world!)" \
    "01" "28" "02" "05" "06"
roundtrip default-long-body "$(repeat 20 00) $(repeat 300 5a)" "00" "04" "ff" "$(le 2 300)"
roundtrip default-wrong-header-size "$(repeat 21 00) $(repeat 20 00) $(text ok)" "00" "01" "fe" "02"
mapfile -t s < <(spec 1 3 1 0 "$(le 1 0)" "$(le 1 0)")
roundtrip u8-unrepresentable "$(repeat 3 00) $(repeat 100 61) $(repeat 3 00) $(repeat 200 62)" \
    "c0" "${s[@]}" "02" "64" "c8"
mapfile -t s < <(spec 2 6 2 1 "$(le 1 3)" "$(le 1 2)" "$(le 1 200)")
roundtrip u16le-counts-whole-frame "aa bb 00 00 cc dd $(text body) aa bb 00 00 cc dd" "c0" "${s[@]}" "01" "04" "00"
mapfile -t s < <(spec 4 4 0 0 "$(le 1 0)" "$(le 1 1)")
roundtrip max-is-header "$(repeat 4 00) $(repeat 4 00) 01" "c0" "${s[@]}" "02" "00" "01"
mapfile -t s < <(spec 8 8 0 2 "$(le 1 6)" "$(le 1 5)")
roundtrip u64-adjust-int64-max "$(repeat 8 00) $(text x)" "c0" "${s[@]}" "03" "01"
mapfile -t s < <(spec 8 8 0 0 "$(le 1 5)" "$(le 1 5)")
roundtrip u64-adjust-int64-min "$(repeat 8 00) $(text x)" "c0" "${s[@]}" "03" "01"
mapfile -t s < <(spec 4 12 4 0 "$(le 1 4)" "$(le 1 3)" "$(le 2 100)")
roundtrip u32-counts-after-field "$(repeat 12 00) $(text abc) $(repeat 12 00)" "c2" "${s[@]}" "$(le 2 26)" "02" "03" "00"
