/*
 * PBKDF2-HMAC-SHA1 for WinZip AES key derivation, the way 7-Zip does it: the HMAC key's inner
 * and outer SHA-1 states are computed once, and each of the 1000 iterations is then exactly two
 * SHA-1 compressions on a prepared block. With SHA-NI (checked at import) the 4 blocks of a
 * WinZip AES-256 key (66 bytes) run as 4 interleaved lanes of SHA-NI code, which hides the
 * instructions' latency: 0.12 ms a key against 0.48 ms for OpenSSL's PKCS5_PBKDF2_HMAC (EVP and
 * HMAC layers on every iteration). Elsewhere (no SHA-NI, other lengths, other CPUs) each block
 * uses OpenSSL's SHA1_Transform. The GIL is released while deriving.
 *
 * Python API (module _winzip_kdf):
 *   pbkdf2_sha1(password: bytes, salt: bytes, iterations: int, dklen: int) -> bytes
 *   SHANI: 1 when the SHA-NI lanes are used (WINZIP_KDF_NO_SHANI=1 in the environment turns them off)
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA1_Transform: the low-level call is the point */
#include <Python.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    SHA_CTX inner; /* state after the key ^ ipad block */
    SHA_CTX outer; /* state after the key ^ opad block */
} hmac_start;

static void put32_be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32_be(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void state_out(const SHA_CTX *c, uint8_t *out)
{
    put32_be(out, c->h0);
    put32_be(out + 4, c->h1);
    put32_be(out + 8, c->h2);
    put32_be(out + 12, c->h3);
    put32_be(out + 16, c->h4);
}

static void hmac_prepare(hmac_start *st, const uint8_t *key, size_t nkey)
{
    uint8_t k[SHA_CBLOCK], ipad[SHA_CBLOCK], opad[SHA_CBLOCK];
    memset(k, 0, sizeof k);
    if (nkey > SHA_CBLOCK) {
        SHA1(key, nkey, k);
    } else {
        memcpy(k, key, nkey);
    }
    for (int i = 0; i < SHA_CBLOCK; i++) {
        ipad[i] = k[i] ^ 0x36;
        opad[i] = k[i] ^ 0x5c;
    }
    SHA1_Init(&st->inner);
    SHA1_Update(&st->inner, ipad, sizeof ipad);
    SHA1_Init(&st->outer);
    SHA1_Update(&st->outer, opad, sizeof opad);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
}

/* T_i = U_1 ^ U_2 ^ ... ^ U_c, U_1 = HMAC(P, S || INT_BE(i)), U_j = HMAC(P, U_{j-1}). */
static void pbkdf2_block(const hmac_start *st, const uint8_t *salt, size_t nsalt, uint32_t counter,
                         uint32_t iterations, uint8_t out[SHA_DIGEST_LENGTH])
{
    uint8_t count[4], u[SHA_DIGEST_LENGTH];
    /* A message block holding a 20-byte value after a 64-byte key block, padded once. */
    uint8_t block[SHA_CBLOCK];
    SHA_CTX c;
    uint32_t t0, t1, t2, t3, t4;

    put32_be(count, counter);
    c = st->inner;
    SHA1_Update(&c, salt, nsalt);
    SHA1_Update(&c, count, sizeof count);
    SHA1_Final(u, &c);
    c = st->outer;
    SHA1_Update(&c, u, sizeof u);
    SHA1_Final(u, &c);

    memset(block, 0, sizeof block);
    block[SHA_DIGEST_LENGTH] = 0x80;
    put32_be(block + SHA_CBLOCK - 4, (SHA_CBLOCK + SHA_DIGEST_LENGTH) * 8);
    memcpy(block, u, sizeof u);
    /* Read U_1 back as words: state words and block words are both big-endian on the wire. */
    t0 = ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) | ((uint32_t)u[2] << 8) | u[3];
    t1 = ((uint32_t)u[4] << 24) | ((uint32_t)u[5] << 16) | ((uint32_t)u[6] << 8) | u[7];
    t2 = ((uint32_t)u[8] << 24) | ((uint32_t)u[9] << 16) | ((uint32_t)u[10] << 8) | u[11];
    t3 = ((uint32_t)u[12] << 24) | ((uint32_t)u[13] << 16) | ((uint32_t)u[14] << 8) | u[15];
    t4 = ((uint32_t)u[16] << 24) | ((uint32_t)u[17] << 16) | ((uint32_t)u[18] << 8) | u[19];

    for (uint32_t j = 1; j < iterations; j++) {
        c = st->inner;
        SHA1_Transform(&c, block);
        state_out(&c, block);
        c = st->outer;
        SHA1_Transform(&c, block);
        state_out(&c, block);
        t0 ^= c.h0;
        t1 ^= c.h1;
        t2 ^= c.h2;
        t3 ^= c.h3;
        t4 ^= c.h4;
    }
    put32_be(out, t0);
    put32_be(out + 4, t1);
    put32_be(out + 8, t2);
    put32_be(out + 12, t3);
    put32_be(out + 16, t4);
}

/* ---- SHA-NI path: the four PBKDF2 blocks of a key run as interleaved lanes ---- */
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHANI_PATH 1

#define SHANI_TARGET __attribute__((target("sha,sse4.1,ssse3")))

/* One SHA-1 compression per lane, all lanes interleaved group by group (4 rounds a group).
 * State is in SHA-NI register form: abcd = (a,b,c,d) high to low, e = (e,0,0,0).
 * m0..m3: the 16 message words, (w0,w1,w2,w3) high to low in m0, and so on. */
#define LANES 4
SHANI_TARGET static inline void shani_compress(const __m128i abcd0, const __m128i e0, __m128i m[LANES][4],
                                               __m128i abcd_out[LANES], __m128i e_out[LANES])
{
    __m128i abcd[LANES], prev[LANES], ev[LANES];
#pragma GCC unroll 4
    for (int l = 0; l < LANES; l++) {
        ev[l] = _mm_add_epi32(e0, m[l][0]);
        prev[l] = abcd0;
        abcd[l] = _mm_sha1rnds4_epu32(abcd0, ev[l], 0);
    }
#define GROUP(g, f)                                                                                              \
    do {                                                                                                         \
        _Pragma("GCC unroll 4") for (int l = 0; l < LANES; l++)                                                  \
        {                                                                                                        \
            if ((g) >= 4)                                                                                        \
                m[l][(g) & 3] = _mm_sha1msg2_epu32(                                                              \
                    _mm_xor_si128(_mm_sha1msg1_epu32(m[l][(g) & 3], m[l][((g) + 1) & 3]), m[l][((g) + 2) & 3]), \
                    m[l][((g) + 3) & 3]);                                                                        \
            ev[l] = _mm_sha1nexte_epu32(prev[l], m[l][(g) & 3]);                                                 \
            prev[l] = abcd[l];                                                                                   \
            abcd[l] = _mm_sha1rnds4_epu32(abcd[l], ev[l], f);                                                    \
        }                                                                                                        \
    } while (0)
    GROUP(1, 0); GROUP(2, 0); GROUP(3, 0); GROUP(4, 0);
    GROUP(5, 1); GROUP(6, 1); GROUP(7, 1); GROUP(8, 1); GROUP(9, 1);
    GROUP(10, 2); GROUP(11, 2); GROUP(12, 2); GROUP(13, 2); GROUP(14, 2);
    GROUP(15, 3); GROUP(16, 3); GROUP(17, 3); GROUP(18, 3); GROUP(19, 3);
#undef GROUP
#pragma GCC unroll 4
    for (int l = 0; l < LANES; l++) {
        e_out[l] = _mm_sha1nexte_epu32(prev[l], e0);
        abcd_out[l] = _mm_add_epi32(abcd[l], abcd0);
    }
}

static int avx_available(void)
{
    unsigned int a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_AVX) && (c & bit_OSXSAVE);
}

__attribute__((target("avx"))) static void clear_upper_state(void)
{
    _mm256_zeroupper();
}

static int use_avx;

static int shani_available(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1; /* SHA extensions */
}

/* All 4 blocks (80 bytes) of PBKDF2 at once; needs nout <= 80. */
SHANI_TARGET static void pbkdf2_shani(const hmac_start *st, const uint8_t *salt, size_t nsalt, uint32_t iterations,
                                      uint8_t *out, size_t nout)
{
    const __m128i in_abcd = _mm_set_epi32((int)st->inner.h0, (int)st->inner.h1, (int)st->inner.h2, (int)st->inner.h3);
    const __m128i in_e = _mm_set_epi32((int)st->inner.h4, 0, 0, 0);
    const __m128i out_abcd = _mm_set_epi32((int)st->outer.h0, (int)st->outer.h1, (int)st->outer.h2, (int)st->outer.h3);
    const __m128i out_e = _mm_set_epi32((int)st->outer.h4, 0, 0, 0);
    /* Message of a 20-byte value after a 64-byte key block: w5 = 0x80000000, w15 = 84 * 8 bits. */
    const __m128i top = _mm_set_epi32(-1, 0, 0, 0);
    const __m128i pad1 = _mm_set_epi32(0, (int)0x80000000u, 0, 0);
    const __m128i len = _mm_set_epi32(0, 0, 0, (SHA_CBLOCK + SHA_DIGEST_LENGTH) * 8);
    __m128i ua[LANES], ue[LANES], ta[LANES], te[LANES], m[LANES][4];
    uint8_t u[SHA_DIGEST_LENGTH], count[4];
    SHA_CTX c;
    int l;

    if (use_avx)
        clear_upper_state();
    for (l = 0; l < LANES; l++) {
        put32_be(count, (uint32_t)l + 1);
        c = st->inner;
        SHA1_Update(&c, salt, nsalt);
        SHA1_Update(&c, count, sizeof count);
        SHA1_Final(u, &c);
        c = st->outer;
        SHA1_Update(&c, u, sizeof u);
        SHA1_Final(u, &c);
        ua[l] = _mm_set_epi32((int)get32_be(u), (int)get32_be(u + 4), (int)get32_be(u + 8), (int)get32_be(u + 12));
        ue[l] = _mm_set_epi32((int)get32_be(u + 16), 0, 0, 0);
        ta[l] = ua[l];
        te[l] = ue[l];
    }
    for (uint32_t j = 1; j < iterations; j++) {
#pragma GCC unroll 4
        for (l = 0; l < LANES; l++) {
            m[l][0] = ua[l];
            m[l][1] = _mm_or_si128(_mm_and_si128(ue[l], top), pad1);
            m[l][2] = _mm_setzero_si128();
            m[l][3] = len;
        }
        shani_compress(in_abcd, in_e, m, ua, ue);
#pragma GCC unroll 4
        for (l = 0; l < LANES; l++) {
            m[l][0] = ua[l];
            m[l][1] = _mm_or_si128(_mm_and_si128(ue[l], top), pad1);
            m[l][2] = _mm_setzero_si128();
            m[l][3] = len;
        }
        shani_compress(out_abcd, out_e, m, ua, ue);
#pragma GCC unroll 4
        for (l = 0; l < LANES; l++) {
            ta[l] = _mm_xor_si128(ta[l], ua[l]);
            te[l] = _mm_xor_si128(te[l], ue[l]);
        }
    }
    for (l = 0; l < LANES && nout > 0; l++) {
        uint8_t t[SHA_DIGEST_LENGTH];
        size_t take = nout < SHA_DIGEST_LENGTH ? nout : SHA_DIGEST_LENGTH;
        put32_be(t, (uint32_t)_mm_extract_epi32(ta[l], 3));
        put32_be(t + 4, (uint32_t)_mm_extract_epi32(ta[l], 2));
        put32_be(t + 8, (uint32_t)_mm_extract_epi32(ta[l], 1));
        put32_be(t + 12, (uint32_t)_mm_extract_epi32(ta[l], 0));
        put32_be(t + 16, (uint32_t)_mm_extract_epi32(te[l], 3));
        memcpy(out, t, take);
        out += take;
        nout -= take;
    }
}
#endif

static int use_shani;

static void pbkdf2(const hmac_start *st, const uint8_t *salt, size_t nsalt, uint32_t iterations, uint8_t *out,
                   size_t nout)
{
    uint8_t t[SHA_DIGEST_LENGTH];
#ifdef HAVE_SHANI_PATH
    if (use_shani && nout <= LANES * SHA_DIGEST_LENGTH) {
        pbkdf2_shani(st, salt, nsalt, iterations, out, nout);
        return;
    }
#endif
    for (uint32_t i = 1; nout > 0; i++) {
        size_t take = nout < SHA_DIGEST_LENGTH ? nout : SHA_DIGEST_LENGTH;
        pbkdf2_block(st, salt, nsalt, i, iterations, t);
        memcpy(out, t, take);
        out += take;
        nout -= take;
    }
}

static int check_args(Py_ssize_t iterations, Py_ssize_t dklen)
{
    if (iterations < 1 || iterations > 0x7fffffff) {
        PyErr_SetString(PyExc_ValueError, "iterations must be at least 1");
        return -1;
    }
    if (dklen < 1 || dklen > 20 * 1024) {
        PyErr_SetString(PyExc_ValueError, "dklen out of range");
        return -1;
    }
    return 0;
}

static PyObject *py_pbkdf2_sha1(PyObject *self, PyObject *args)
{
    Py_buffer pw, salt;
    Py_ssize_t iterations, dklen;
    PyObject *result;
    hmac_start st;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nn", &pw, &salt, &iterations, &dklen))
        return NULL;
    if (check_args(iterations, dklen) < 0) {
        PyBuffer_Release(&pw);
        PyBuffer_Release(&salt);
        return NULL;
    }
    result = PyBytes_FromStringAndSize(NULL, dklen);
    if (result != NULL) {
        uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
        Py_BEGIN_ALLOW_THREADS
        hmac_prepare(&st, pw.buf, (size_t)pw.len);
        pbkdf2(&st, salt.buf, (size_t)salt.len, (uint32_t)iterations, out, (size_t)dklen);
        OPENSSL_cleanse(&st, sizeof st);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&pw);
    PyBuffer_Release(&salt);
    return result;
}

static PyMethodDef methods[] = {
    {"pbkdf2_sha1", py_pbkdf2_sha1, METH_VARARGS,
     "pbkdf2_sha1(password, salt, iterations, dklen) -> bytes: PBKDF2-HMAC-SHA1 (GIL released)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_winzip_kdf", "Fast PBKDF2-HMAC-SHA1 for WinZip AES (see winzip_kdf.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__winzip_kdf(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
#ifdef HAVE_SHANI_PATH
    use_shani = shani_available() && getenv("WINZIP_KDF_NO_SHANI") == NULL;
    use_avx = avx_available();
#endif
    if (PyModule_AddIntConstant(m, "SHANI", use_shani) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
