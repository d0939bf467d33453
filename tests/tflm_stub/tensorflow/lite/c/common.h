// Test stub: the few TFLite C API types the exported sources and the harness use (declarations only;
// no TFLite Micro sources are available here). Signatures follow tensorflow/lite/c/common.h.
#ifndef EDGESDK_STUB_TFLITE_C_COMMON_H_
#define EDGESDK_STUB_TFLITE_C_COMMON_H_
#include <cstddef>
#include <cstdint>
typedef enum TfLiteStatus { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef union TfLitePtrUnion { int32_t* i32; float* f; int8_t* int8; uint8_t* uint8; char* raw; } TfLitePtrUnion;
typedef struct TfLiteTensor { int type; TfLitePtrUnion data; void* dims; size_t bytes; } TfLiteTensor;
#endif
