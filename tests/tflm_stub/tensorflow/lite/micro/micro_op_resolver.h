// Test stub: the resolver interface (tensorflow/lite/micro/micro_op_resolver.h).
#ifndef EDGESDK_STUB_MICRO_OP_RESOLVER_H_
#define EDGESDK_STUB_MICRO_OP_RESOLVER_H_
namespace tflite {
class MicroOpResolver {
 public:
  virtual ~MicroOpResolver() = default;
};
}  // namespace tflite
#endif
