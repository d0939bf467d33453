// A TFLite Micro benchmark harness that answers the edgesdk host over a serial line.
//
// Include it in exactly one source file of a firmware, beside the files `edgesdk export c` wrote
// (model_data.h, model_data.cc, model_ops.h). The board supplies a microsecond clock and a way to
// write bytes; Setup() loads the model once, then every line the host sends goes to Handle():
//   "info"                -> one edgesdk.deviceinfo/1 JSON line
//   "bench RUNS WARMUP"   -> WARMUP untimed inferences, RUNS timed ones, one edgesdk.measurement/1 line
#ifndef EDGESDK_HARNESS_H_
#define EDGESDK_HARNESS_H_

#include <cstddef>
#include <cstdint>

#include "edgesdk_report.h"
#include "model_data.h"
#include "model_ops.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace edgesdk {

struct Platform {
  uint32_t (*micros)();                         // a free-running microsecond counter
  void (*write)(const char* text, size_t len);  // to the UART the host listens on
};

class Harness {
 public:
  Harness(const Platform& platform, const Board& board) : platform_(platform), board_(board) {}

  // Load the model and allocate its tensors; false (after an error line) if it cannot run.
  bool Setup() {
    const uint32_t start = platform_.micros();
    const tflite::Model* model = tflite::GetModel(g_model);
    if (model->version() != TFLITE_SCHEMA_VERSION) return Fail("bad_model", "schema version mismatch");
    if (RegisterModelOps(resolver_) != kTfLiteOk) return Fail("no_runtime", "an operator failed to register");
    static tflite::MicroInterpreter interpreter(model, resolver_, arena_, kTensorArenaSize);
    interpreter_ = &interpreter;
    if (interpreter_->AllocateTensors() != kTfLiteOk) {
      return Fail("unsupported_model", "AllocateTensors failed: the arena is too small or an operator is missing");
    }
    timings_.init_us = platform_.micros() - start;
    model_ = Model{kModelSha256, g_model_len, static_cast<unsigned int>(kTensorArenaSize),
                   static_cast<unsigned int>(interpreter_->arena_used_bytes())};
    return true;
  }

  void Handle(const char* line) {
    unsigned int runs = 0, warmup = 0;
    switch (Parse(line, &runs, &warmup)) {
      case Command::kInfo:
        Send(FormatInfo(buffer_, sizeof(buffer_), board_, model_));
        break;
      case Command::kBench:
        Bench(runs, warmup);
        break;
      case Command::kNone:
        break;  // banners, echoes and noise: the host only reads JSON lines
    }
  }

 private:
  void Bench(unsigned int runs, unsigned int warmup) {
    if (interpreter_ == nullptr) {
      Send(FormatError(buffer_, sizeof(buffer_), "no_runtime", "the model did not load at boot"));
      return;
    }
    for (size_t i = 0; i < interpreter_->inputs_size(); ++i) {  // a fixed input: zeros
      TfLiteTensor* in = interpreter_->input(i);
      for (size_t b = 0; b < in->bytes; ++b) in->data.raw[b] = 0;
    }
    uint32_t t0 = platform_.micros();
    if (interpreter_->Invoke() != kTfLiteOk) {
      Send(FormatError(buffer_, sizeof(buffer_), "invoke_failed", "Invoke() failed"));
      return;
    }
    timings_.first_us = platform_.micros() - t0;
    timings_.checksum = kFnvOffset;
    for (size_t i = 0; i < interpreter_->outputs_size(); ++i) {
      TfLiteTensor* out = interpreter_->output(i);
      timings_.checksum = Fnv1a(out->data.raw, out->bytes, timings_.checksum);
    }
    for (unsigned int i = 0; i < warmup; ++i) interpreter_->Invoke();
    timings_.capped = runs > kMaxRuns;
    timings_.runs = timings_.capped ? kMaxRuns : runs;
    timings_.warmup = warmup;
    for (unsigned int i = 0; i < timings_.runs; ++i) {
      t0 = platform_.micros();
      interpreter_->Invoke();
      timings_.runs_us[i] = platform_.micros() - t0;
    }
    Send(FormatMeasurement(buffer_, sizeof(buffer_), board_, model_, timings_));
  }

  bool Fail(const char* error, const char* message) {
    Send(FormatError(buffer_, sizeof(buffer_), error, message));
    return false;
  }

  void Send(size_t len) {
    if (len) platform_.write(buffer_, len);
  }

  Platform platform_;
  Board board_;
  Model model_{kModelSha256, g_model_len, static_cast<unsigned int>(kTensorArenaSize), 0};
  Timings timings_{};
  ModelOpResolver resolver_;
  tflite::MicroInterpreter* interpreter_ = nullptr;
  char buffer_[1024];
  alignas(16) uint8_t arena_[kTensorArenaSize];
};

}  // namespace edgesdk

#endif  // EDGESDK_HARNESS_H_
