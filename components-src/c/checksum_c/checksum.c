/* checksum_c: checksums in C. Kind "crc32" replies the CRC-32 (IEEE, as in
 * zlib and Go's hash/crc32) of the input, kind "adler32" its Adler-32, both
 * as 8 lowercase hex digits. Inputs up to the 1 MiB limit.
 * Built by scripts/components/c.sh into testdata/checksum_c.wasm. */
#include "tsubame.h"

/* The table is built on first use in each instance: 1 KiB, no state that a
 * request depends on. */
static uint32_t crc_table[256];
static int crc_ready;

static uint32_t crc32(ts_bytes b) {
	if (!crc_ready) {
		for (uint32_t n = 0; n < 256; n++) {
			uint32_t c = n;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
			crc_table[n] = c;
		}
		crc_ready = 1;
	}
	uint32_t c = 0xffffffffu;
	for (uint32_t i = 0; i < b.len; i++)
		c = crc_table[(c ^ b.ptr[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

static uint32_t adler32(ts_bytes b) {
	/* 5552 is the most bytes before the sums can overflow 32 bits. */
	uint32_t a = 1, s = 0;
	for (uint32_t i = 0; i < b.len;) {
		uint32_t end = b.len - i > 5552 ? i + 5552 : b.len;
		for (; i < end; i++) {
			a += b.ptr[i];
			s += a;
		}
		a %= 65521;
		s %= 65521;
	}
	return s << 16 | a;
}

static void reply_hex(uint32_t v) {
	static const char digits[] = "0123456789abcdef";
	uint8_t *out = (uint8_t *)ts_alloc(8);
	for (int i = 7; i >= 0; i--, v >>= 4)
		out[i] = (uint8_t)digits[v & 0xf];
	ts_bytes b = {out, 8};
	ts_reply(b);
}

static void step(void) {
	ts_bytes kind = ts_kind();
	if (ts_eq(kind, "crc32")) {
		reply_hex(crc32(ts_input()));
	} else if (ts_eq(kind, "adler32")) {
		reply_hex(adler32(ts_input()));
	} else {
		ts_fail_unknown_kind(kind);
	}
}

TSUBAME_STEP(step)
