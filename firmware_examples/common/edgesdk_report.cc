#include "edgesdk_report.h"

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace edgesdk {
namespace {

// Appends with snprintf semantics, remembering overflow.
struct Writer {
  char* out;
  size_t size;
  size_t len = 0;
  bool overflow = false;
  void Add(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
};

void Writer::Add(const char* fmt, ...) {
  if (overflow) return;
  va_list args;
  va_start(args, fmt);
  int n = vsnprintf(out + len, size - len, fmt, args);
  va_end(args);
  if (n < 0 || static_cast<size_t>(n) >= size - len) {
    overflow = true;
  } else {
    len += static_cast<size_t>(n);
  }
}

// Milliseconds from microseconds without %f (newlib-nano builds often lack float printf).
void AddMs(Writer& w, const char* key, double us) {
  uint64_t ns = static_cast<uint64_t>(us * 1000.0 + 0.5);
  w.Add("\"%s\":%lu.%06lu", key, static_cast<unsigned long>(ns / 1000000u),
        static_cast<unsigned long>(ns % 1000000u));
}

void AddDevice(Writer& w, const Board& board) {
  w.Add("\"device\":{\"fingerprint\":\"%s-%s\",\"hostname\":\"%s\",\"machine\":\"%s\",\"cpu_model\":\"%s\","
        "\"cores\":1,\"ram_bytes\":null,\"os\":\"bare-metal\"},\"runtime\":{\"name\":\"%s\",\"version\":\"%s\"}",
        board.name, board.id, board.name, board.cpu, board.cpu, board.runtime, board.version);
}

void Sort(uint32_t* v, unsigned int n) {  // insertion sort: n <= kMaxRuns
  for (unsigned int i = 1; i < n; ++i) {
    uint32_t x = v[i];
    unsigned int j = i;
    for (; j > 0 && v[j - 1] > x; --j) v[j] = v[j - 1];
    v[j] = x;
  }
}

uint32_t Rank(const uint32_t* sorted, unsigned int n, double q) {  // nearest-rank percentile
  unsigned int k = static_cast<unsigned int>(std::ceil(q * n));
  return sorted[(k == 0 ? 1 : k) - 1];
}

}  // namespace

Command Parse(const char* line, unsigned int* runs, unsigned int* warmup) {
  char word[8] = {0};
  unsigned int r = 0, w = 0;
  int n = sscanf(line, "%7s %u %u", word, &r, &w);
  if (n >= 1 && strcmp(word, "info") == 0) return Command::kInfo;
  if (n == 3 && strcmp(word, "bench") == 0 && r > 0) {
    *runs = r;
    *warmup = w;
    return Command::kBench;
  }
  return Command::kNone;
}

uint32_t Fnv1a(const void* data, size_t bytes, uint32_t hash) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * 16777619u;
  return hash;
}

size_t FormatInfo(char* out, size_t size, const Board& board, const Model& model) {
  Writer w{out, size};
  w.Add("{\"schema\":\"edgesdk.deviceinfo/1\",");
  AddDevice(w, board);
  w.Add(",\"model_sha256\":\"%s\",\"model_bytes\":%u,\"arena_bytes\":%u,\"arena_used_bytes\":%u,"
        "\"max_runs\":%u}\n", model.sha256, model.bytes, model.arena_bytes, model.arena_used_bytes, kMaxRuns);
  return w.overflow ? 0 : w.len;
}

size_t FormatMeasurement(char* out, size_t size, const Board& board, const Model& model, Timings& t) {
  unsigned int n = t.runs;
  double sum = 0;
  for (unsigned int i = 0; i < n; ++i) sum += t.runs_us[i];
  double mean = n ? sum / n : 0;
  double var = 0;
  for (unsigned int i = 0; i < n; ++i) var += (t.runs_us[i] - mean) * (t.runs_us[i] - mean);
  double std = n > 1 ? std::sqrt(var / (n - 1)) : 0;
  Sort(t.runs_us, n);
  Writer w{out, size};
  w.Add("{\"schema\":\"edgesdk.measurement/1\",\"model_sha256\":\"%s\",", model.sha256);
  AddDevice(w, board);
  w.Add(",\"delegate\":\"none\",\"threads\":1,\"latency\":{");
  AddMs(w, "mean_ms", mean);
  w.Add(",");
  AddMs(w, "p50_ms", Rank(t.runs_us, n, 0.50));
  w.Add(",");
  AddMs(w, "p90_ms", Rank(t.runs_us, n, 0.90));
  w.Add(",");
  AddMs(w, "p99_ms", Rank(t.runs_us, n, 0.99));
  w.Add(",");
  AddMs(w, "min_ms", t.runs_us[0]);
  w.Add(",");
  AddMs(w, "max_ms", t.runs_us[n - 1]);
  w.Add(",");
  AddMs(w, "std_ms", std);
  unsigned long cv = mean > 0 ? static_cast<unsigned long>(std / mean * 1e6 + 0.5) : 0;
  w.Add(",\"cv\":%lu.%06lu,\"runs\":%u,\"warmup_runs\":%u,", cv / 1000000u, cv % 1000000u, n, t.warmup);
  AddMs(w, "first_inference_ms", t.first_us);
  w.Add(",");
  AddMs(w, "init_ms", t.init_us);
  w.Add("},\"memory\":{\"peak_rss_bytes\":null,\"peak_rss_increase_bytes\":null,\"model_bytes\":%u,"
        "\"arena_bytes\":%u,\"arena_used_bytes\":%u},", model.bytes, model.arena_bytes, model.arena_used_bytes);
  w.Add("\"power\":{\"source\":null,\"reason\":\"the board measures no power; use an external meter\"},");
  w.Add("\"output_checksum\":\"fnv1a32:%08lx\",\"warnings\":[\"a microcontroller has no RSS: memory is the "
        "static tensor arena\"%s]}\n", static_cast<unsigned long>(t.checksum),
        t.capped ? ",\"runs capped at the firmware's buffer (edgesdk::kMaxRuns)\"" : "");
  return w.overflow ? 0 : w.len;
}

size_t FormatError(char* out, size_t size, const char* error, const char* message) {
  Writer w{out, size};
  w.Add("{\"schema\":\"edgesdk.error/1\",\"error\":\"%s\",\"message\":\"%s\"}\n", error, message);
  return w.overflow ? 0 : w.len;
}

}  // namespace edgesdk
