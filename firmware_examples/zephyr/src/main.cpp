// edgesdk benchmark firmware for Zephyr (any board with a console UART and TFLite Micro, e.g.
// nrf5340dk/nrf5340/cpuapp or nucleo_h7a3zi_q). Copy model_data.h, model_data.cc and model_ops.h from
// `edgesdk export c` into src/, then `west build -b BOARD` and `west flash` (see ../README.md).
#include <zephyr/drivers/hwinfo.h>
#include <zephyr/drivers/uart.h>
#include <zephyr/kernel.h>

#include <cstdio>

#include "edgesdk_harness.h"

namespace {

const struct device* const uart = DEVICE_DT_GET(DT_CHOSEN(zephyr_console));

uint32_t Micros() { return static_cast<uint32_t>(k_cyc_to_us_floor64(k_cycle_get_64())); }

void Write(const char* text, size_t len) {
  for (size_t i = 0; i < len; ++i) uart_poll_out(uart, text[i]);
}

}  // namespace

int main() {
  uint8_t raw[8] = {0};
  ssize_t n = hwinfo_get_device_id(raw, sizeof(raw));
  char id[17] = "0000000000000000";
  for (ssize_t i = 0; i < n && i < 8; ++i) snprintf(id + 2 * i, 3, "%02x", raw[i]);
  static edgesdk::Harness harness({Micros, Write}, {CONFIG_BOARD, CONFIG_SOC, id, "tflite-micro", "zephyr"});
  printk("edgesdk harness: loading the model\n");
  harness.Setup();
  printk("edgesdk harness: ready (info | bench RUNS WARMUP)\n");
  char line[64];
  size_t len = 0;
  while (true) {
    unsigned char c;
    if (uart_poll_in(uart, &c) != 0) {
      k_msleep(1);
      continue;
    }
    if (c == '\n' || c == '\r') {
      line[len] = '\0';
      if (len) harness.Handle(line);
      len = 0;
    } else if (len + 1 < sizeof(line)) {
      line[len++] = static_cast<char>(c);
    }
  }
  return 0;
}
