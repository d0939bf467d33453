// edgesdk benchmark firmware for an Arduino Nano 33 BLE Sense (nRF52840, Cortex-M4F @ 64 MHz), or any
// Arduino board the Arduino_TensorFlowLite / Chirale_TensorFLowLite library supports.
// Copy model_data.h, model_data.cc and model_ops.h from `edgesdk export c` and the files of ../common
// into this folder, build and flash (see ../README.md), then:
//   edgesdk bench model.tflite --device 'serial:///dev/ttyACM0?baud=115200'
#include <Arduino.h>

#include "edgesdk_harness.h"

namespace {

uint32_t Micros() { return micros(); }
void Write(const char* text, size_t len) { Serial.write(reinterpret_cast<const uint8_t*>(text), len); }

char board_id[17] = "0000000000000000";
edgesdk::Harness* harness = nullptr;
char line[64];
size_t line_len = 0;

}  // namespace

void setup() {
  Serial.begin(115200);
  while (!Serial) {
  }
#if defined(NRF_FICR)
  snprintf(board_id, sizeof(board_id), "%08lx%08lx", static_cast<unsigned long>(NRF_FICR->DEVICEID[1]),
           static_cast<unsigned long>(NRF_FICR->DEVICEID[0]));
#endif
  static edgesdk::Harness instance({Micros, Write},
                                   {"arduino-nano-33-ble-sense", "cortex-m4f@64MHz", board_id, "tflite-micro",
                                    "arduino"});
  harness = &instance;
  Serial.println("edgesdk harness: loading the model");
  harness->Setup();
  Serial.println("edgesdk harness: ready (info | bench RUNS WARMUP)");
}

void loop() {
  while (Serial.available() > 0) {
    char c = static_cast<char>(Serial.read());
    if (c == '\n' || c == '\r') {
      line[line_len] = '\0';
      if (line_len) harness->Handle(line);
      line_len = 0;
    } else if (line_len + 1 < sizeof(line)) {
      line[line_len++] = c;
    }
  }
}
