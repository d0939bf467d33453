// Test stub: tflite::MicroMutableOpResolver's registration methods, named as in
// tensorflow/lite/micro/micro_mutable_op_resolver.h (one Add<Op>() per TFLite Micro built-in). Like the
// real one, it refuses registrations beyond tOpCount; it registers nothing else.
#ifndef EDGESDK_STUB_MICRO_MUTABLE_OP_RESOLVER_H_
#define EDGESDK_STUB_MICRO_MUTABLE_OP_RESOLVER_H_
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"
namespace tflite {
template <unsigned int tOpCount>
class MicroMutableOpResolver : public MicroOpResolver {
 public:
  TfLiteStatus AddAbs() { return Register(); }
  TfLiteStatus AddAdd() { return Register(); }
  TfLiteStatus AddAddN() { return Register(); }
  TfLiteStatus AddArgMax() { return Register(); }
  TfLiteStatus AddArgMin() { return Register(); }
  TfLiteStatus AddAssignVariable() { return Register(); }
  TfLiteStatus AddAveragePool2D() { return Register(); }
  TfLiteStatus AddBatchMatMul() { return Register(); }
  TfLiteStatus AddBatchToSpaceNd() { return Register(); }
  TfLiteStatus AddBroadcastArgs() { return Register(); }
  TfLiteStatus AddBroadcastTo() { return Register(); }
  TfLiteStatus AddCallOnce() { return Register(); }
  TfLiteStatus AddCast() { return Register(); }
  TfLiteStatus AddCeil() { return Register(); }
  TfLiteStatus AddCircularBuffer() { return Register(); }
  TfLiteStatus AddConcatenation() { return Register(); }
  TfLiteStatus AddConv2D() { return Register(); }
  TfLiteStatus AddCos() { return Register(); }
  TfLiteStatus AddCumSum() { return Register(); }
  TfLiteStatus AddDepthToSpace() { return Register(); }
  TfLiteStatus AddDepthwiseConv2D() { return Register(); }
  TfLiteStatus AddDequantize() { return Register(); }
  TfLiteStatus AddDetectionPostprocess() { return Register(); }
  TfLiteStatus AddDiv() { return Register(); }
  TfLiteStatus AddElu() { return Register(); }
  TfLiteStatus AddEmbeddingLookup() { return Register(); }
  TfLiteStatus AddEqual() { return Register(); }
  TfLiteStatus AddEthosU() { return Register(); }
  TfLiteStatus AddExp() { return Register(); }
  TfLiteStatus AddExpandDims() { return Register(); }
  TfLiteStatus AddFill() { return Register(); }
  TfLiteStatus AddFloor() { return Register(); }
  TfLiteStatus AddFloorDiv() { return Register(); }
  TfLiteStatus AddFloorMod() { return Register(); }
  TfLiteStatus AddFullyConnected() { return Register(); }
  TfLiteStatus AddGather() { return Register(); }
  TfLiteStatus AddGatherNd() { return Register(); }
  TfLiteStatus AddGreater() { return Register(); }
  TfLiteStatus AddGreaterEqual() { return Register(); }
  TfLiteStatus AddHardSwish() { return Register(); }
  TfLiteStatus AddIf() { return Register(); }
  TfLiteStatus AddL2Normalization() { return Register(); }
  TfLiteStatus AddL2Pool2D() { return Register(); }
  TfLiteStatus AddLeakyRelu() { return Register(); }
  TfLiteStatus AddLess() { return Register(); }
  TfLiteStatus AddLessEqual() { return Register(); }
  TfLiteStatus AddLog() { return Register(); }
  TfLiteStatus AddLogicalAnd() { return Register(); }
  TfLiteStatus AddLogicalNot() { return Register(); }
  TfLiteStatus AddLogicalOr() { return Register(); }
  TfLiteStatus AddLogistic() { return Register(); }
  TfLiteStatus AddLogSoftmax() { return Register(); }
  TfLiteStatus AddMaximum() { return Register(); }
  TfLiteStatus AddMaxPool2D() { return Register(); }
  TfLiteStatus AddMean() { return Register(); }
  TfLiteStatus AddMinimum() { return Register(); }
  TfLiteStatus AddMirrorPad() { return Register(); }
  TfLiteStatus AddMul() { return Register(); }
  TfLiteStatus AddNeg() { return Register(); }
  TfLiteStatus AddNotEqual() { return Register(); }
  TfLiteStatus AddPack() { return Register(); }
  TfLiteStatus AddPad() { return Register(); }
  TfLiteStatus AddPadV2() { return Register(); }
  TfLiteStatus AddPrelu() { return Register(); }
  TfLiteStatus AddQuantize() { return Register(); }
  TfLiteStatus AddReadVariable() { return Register(); }
  TfLiteStatus AddReduceMax() { return Register(); }
  TfLiteStatus AddRelu() { return Register(); }
  TfLiteStatus AddRelu6() { return Register(); }
  TfLiteStatus AddReshape() { return Register(); }
  TfLiteStatus AddResizeBilinear() { return Register(); }
  TfLiteStatus AddResizeNearestNeighbor() { return Register(); }
  TfLiteStatus AddRound() { return Register(); }
  TfLiteStatus AddRsqrt() { return Register(); }
  TfLiteStatus AddSelectV2() { return Register(); }
  TfLiteStatus AddShape() { return Register(); }
  TfLiteStatus AddSin() { return Register(); }
  TfLiteStatus AddSlice() { return Register(); }
  TfLiteStatus AddSoftmax() { return Register(); }
  TfLiteStatus AddSpaceToBatchNd() { return Register(); }
  TfLiteStatus AddSpaceToDepth() { return Register(); }
  TfLiteStatus AddSplit() { return Register(); }
  TfLiteStatus AddSplitV() { return Register(); }
  TfLiteStatus AddSqrt() { return Register(); }
  TfLiteStatus AddSquare() { return Register(); }
  TfLiteStatus AddSquaredDifference() { return Register(); }
  TfLiteStatus AddSqueeze() { return Register(); }
  TfLiteStatus AddStridedSlice() { return Register(); }
  TfLiteStatus AddSub() { return Register(); }
  TfLiteStatus AddSum() { return Register(); }
  TfLiteStatus AddSvdf() { return Register(); }
  TfLiteStatus AddTanh() { return Register(); }
  TfLiteStatus AddTranspose() { return Register(); }
  TfLiteStatus AddTransposeConv() { return Register(); }
  TfLiteStatus AddUnidirectionalSequenceLSTM() { return Register(); }
  TfLiteStatus AddUnpack() { return Register(); }
  TfLiteStatus AddVarHandle() { return Register(); }
  TfLiteStatus AddWhile() { return Register(); }
  TfLiteStatus AddZerosLike() { return Register(); }

 private:
  TfLiteStatus Register() { return count_ < tOpCount ? (++count_, kTfLiteOk) : kTfLiteError; }
  unsigned int count_ = 0;
};
}  // namespace tflite
#endif
