/*
 * The payload decoder's hot loop in C, for bench/native_ceiling.ts: the same steps as
 * decoder/decode_payload.ts (CODING.md 1.3, 3.3-3.4, 5.2, 6.1) for a float payload of the first
 * edition's syntax in scan order 0, levels and float32 reconstruction, so that a C compiler's
 * code for this algorithm can be timed on this machine beside ours. A measuring tool only: the
 * library does not use it.
 *
 * Built as a program (gcc/clang -O3, run on a directory of dumped payloads) and as WebAssembly
 * (clang --target=wasm32, the same function called from Deno).
 */
#include <stdint.h>

#ifdef __wasm__
#define EXPORT __attribute__((visibility("default")))
#else
#define EXPORT
#endif

/* Tables, from core/context_model.ts and core/dependent_quantization.ts. */
typedef struct {
  const uint16_t* lps;   /* LPS_BY_STATE */
  const int16_t* nextA;  /* NEXT_A */
  const int16_t* nextB;  /* NEXT_B */
  const int8_t* dqNext;  /* DQ_NEXT_STATE */
  const int32_t* sets;   /* ESTIMATOR_PARAMETER_SETS, 9 rows of ka, kb, a0, b0 */
} Tables;

typedef struct {
  const uint8_t* data;
  int32_t pos, end, value, range, bitsNeeded;
} Coder;

static inline int readByte(Coder* d) {
  int p = d->pos++;
  return p < d->end ? d->data[p] : 0;
}

static int bypass(Coder* d) {
  d->value <<= 1;
  if (++d->bitsNeeded >= 0) {
    d->bitsNeeded = -8;
    d->value += readByte(d);
  }
  int scaled = d->range << 7;
  if (d->value >= scaled) {
    d->value -= scaled;
    return 1;
  }
  return 0;
}

/* One context-coded bin: the branch-free form of the TypeScript loop. */
#define DECODE_BIN(c, out)                                                       \
  {                                                                              \
    int a = A[c], b = B[c], s = b + (a << 4);                                    \
    int lps = t->lps[((s >> 7) << 3) + (range >> 5) + 248];                      \
    range -= lps;                                                                \
    int scaled = range << 7;                                                     \
    int isLps = (scaled - value - 1) >> 31;                                      \
    value -= scaled & isLps;                                                     \
    range ^= (range ^ lps) & isLps;                                              \
    out = ((~s >> 31) ^ isLps) & 1;                                              \
    int n = __builtin_clz(range) - 23;                                           \
    range <<= n;                                                                 \
    value <<= n;                                                                 \
    bitsNeeded += n;                                                             \
    if (bitsNeeded >= 0) {                                                       \
      value += (pos < end ? data[pos] : 0) << bitsNeeded;                        \
      pos++;                                                                     \
      bitsNeeded -= 8;                                                           \
    }                                                                            \
    A[c] = t->nextA[RA[c] + (out << 8) + a];                                     \
    B[c] = t->nextB[RB[c] + (out << 12) + b];                                    \
  }

#define MAX_CONTEXTS 128

/*
 * Decodes a whole payload of n elements: the qp offset (into *qpOffset), the estimator sets, the
 * levels (reconstruction indices with DQ) into `levels`, and level * step as float32 into `recon`
 * (the caller knows the step from the qp). Returns 0, or -1 on a corrupt level.
 */
EXPORT int decode_payload(const Tables* t, const uint8_t* data, int32_t size, int32_t n,
                          int32_t numGtx, int32_t dq, int32_t qpDensity, int32_t* qpOffset,
                          int32_t* levels, float* recon, float step) {
  int16_t A[MAX_CONTEXTS], B[MAX_CONTEXTS];
  int32_t RA[MAX_CONTEXTS], RB[MAX_CONTEXTS], run[2 * 64];
  Coder d = {data, 2, size, (data[0] << 8) | data[1], 510, -8};
  int bits = 6 + qpDensity, raw = 0;
  for (int i = 0; i < bits; i++) raw = raw * 2 + bypass(&d);
  *qpOffset = raw >= (1 << (bits - 1)) ? raw - (1 << bits) : raw;
  /* Context layout (CODING.md 4): significance, sign, greater-than pairs, remainder prefix. */
  int sigCount = dq ? 24 : 3, signBase = sigCount, gtx = signBase + 3, rem = gtx + 2 * numGtx;
  int total = rem + 32, runLen = numGtx + 31;
  for (int sign = 0; sign < 2; sign++) {
    for (int j = 0; j < runLen; j++) {
      run[sign * runLen + j] = j < numGtx ? gtx + 2 * j + sign : rem + j - numGtx;
    }
  }
  /* Estimator sets: an eco flag per context in a context of its own, then 3 bypass bins. */
  int16_t ecoA[1] = {0}, ecoB[1] = {0};
  int32_t ecoRA[1] = {(t->sets[0] - 4) * 512 + 128}, ecoRB[1] = {(t->sets[1] - 4) * 8192 + 2048};
  for (int c = 0; c < total; c++) {
    int e = 0;
    {
      int16_t* A = ecoA; int16_t* B = ecoB; int32_t* RA = ecoRA; int32_t* RB = ecoRB;
      int value = d.value, range = d.range, bitsNeeded = d.bitsNeeded, pos = d.pos, end = d.end;
      const uint8_t* data = d.data;
      int flag;
      DECODE_BIN(0, flag);
      d.value = value; d.range = range; d.bitsNeeded = bitsNeeded; d.pos = pos;
      if (flag) {
        for (int i = 0; i < 3; i++) e = e * 2 + bypass(&d);
        e += 1;
      }
    }
    const int32_t* p = t->sets + 4 * e;
    RA[c] = (p[0] - 4) * 512 + 128;
    RB[c] = (p[1] - 4) * 8192 + 2048;
    A[c] = p[2];
    B[c] = p[3];
  }
  int value = d.value, range = d.range, bitsNeeded = d.bitsNeeded, pos = d.pos, end = d.end;
  int previous = 0, state = 0;
  for (int idx = 0; idx < n; idx++) {
    int cls = previous > 0 ? 2 : (int)((uint32_t)previous >> 31);
    int c = (dq ? 3 * state : 0) + cls, bin, k = 0;
    DECODE_BIN(c, bin);
    if (bin) {
      c = signBase + cls;
      DECODE_BIN(c, bin);
      int runBase = bin * runLen, j = 0;
      for (;;) {
        c = run[runBase + j];
        DECODE_BIN(c, bin);
        if (bin == 0) break;
        if (++j == runLen) return -1;
      }
      int64_t m = j + 1;
      if (j >= numGtx) {
        int e = j - numGtx, suffix = 0;
        for (int i = 0; i < e; i++) {
          value <<= 1;
          if (++bitsNeeded >= 0) {
            bitsNeeded = -8;
            value += pos < end ? data[pos] : 0;
            pos++;
          }
          int scaled = range << 7;
          suffix <<= 1;
          if (value >= scaled) {
            value -= scaled;
            suffix |= 1;
          }
        }
        m = (int64_t)numGtx + ((int64_t)1 << e) + suffix;
        if (m > (runBase == 0 ? 2147483647LL : 2147483648LL)) return -1;
      }
      k = (int)(runBase == 0 ? m : -m);
    }
    if (dq) {
      levels[idx] = k == 0 ? 0 : k > 0 ? 2 * k - (state & 1) : 2 * k + (state & 1);
      state = t->dqNext[2 * state + (k & 1)];
    } else {
      levels[idx] = k;
    }
    previous = k;
  }
  for (int i = 0; i < n; i++) recon[i] = (float)levels[i] * step;
  return 0;
}

#ifndef __wasm__
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void* readFile(const char* dir, const char* name, long* size) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE* f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(1);
  }
  fseek(f, 0, SEEK_END);
  *size = ftell(f);
  rewind(f);
  void* p = malloc(*size + 1);
  if (fread(p, 1, *size, f) != (size_t)*size) exit(1);
  fclose(f);
  return p;
}

static int byTime(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

/* Usage: payload_decoder DIR RUNS. DIR holds the tables and point_K.{bin,txt}; writes point_K.levels
 * and prints "K median_ms" per point. */
int main(int argc, char** argv) {
  const char* dir = argv[1];
  int runs = atoi(argv[2]);
  long size;
  Tables t = {readFile(dir, "lps.bin", &size), readFile(dir, "next_a.bin", &size),
              readFile(dir, "next_b.bin", &size), readFile(dir, "dq_next.bin", &size),
              readFile(dir, "sets.bin", &size)};
  for (int k = 0;; k++) {
    char name[64];
    snprintf(name, sizeof name, "%s/point_%d.txt", dir, k);
    FILE* f = fopen(name, "r");
    if (!f) break;
    int n, numGtx, dq, qpDensity;
    float step;
    if (fscanf(f, "%d %d %d %d %f", &n, &numGtx, &dq, &qpDensity, &step) != 5) return 1;
    fclose(f);
    snprintf(name, sizeof name, "point_%d.bin", k);
    uint8_t* data = readFile(dir, name, &size);
    int32_t* levels = malloc(4 * (size_t)n);
    float* recon = malloc(4 * (size_t)n);
    double* ms = malloc(sizeof(double) * runs);
    int qpOffset = 0;
    for (int r = 0; r < runs; r++) {
      struct timespec a, b;
      clock_gettime(CLOCK_MONOTONIC, &a);
      if (decode_payload(&t, data, (int32_t)size, n, numGtx, dq, qpDensity, &qpOffset, levels,
                         recon, step) != 0) return 1;
      clock_gettime(CLOCK_MONOTONIC, &b);
      ms[r] = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
    }
    qsort(ms, runs, sizeof(double), byTime);
    snprintf(name, sizeof name, "%s/point_%d.levels", dir, k);
    f = fopen(name, "wb");
    fwrite(levels, 4, n, f);
    fclose(f);
    printf("%d %f\n", k, ms[runs / 2]);
    free(data); free(levels); free(recon); free(ms);
  }
  return 0;
}
#endif
