// Test stub: the Arduino core API the example sketch uses (declarations only), to compile it with g++.
#ifndef EDGESDK_STUB_ARDUINO_H_
#define EDGESDK_STUB_ARDUINO_H_
#include <cstddef>
#include <cstdint>
#include <cstdio>
unsigned long micros();
class HardwareSerial {
 public:
  void begin(unsigned long baud);
  int available();
  int read();
  size_t write(const uint8_t* data, size_t len);
  size_t println(const char* text);
  explicit operator bool() const;
};
extern HardwareSerial Serial;
#endif
