"""What the agent reads from LiteRT's GPU log, what the fingerprint says of an emulated device, and the
GPU profile's fallback prediction; the log lines are LiteRT 2.3's own (copied from real runs)."""

from device_agent.accelerated import adapter, refused_operators
from device_agent.sysinfo import emulation

GPU_LOG = """INFO: [delegate_webgpu.cc:342] Create WebGPU environment (use_low_power=0, enable_host_mapped_pointer=1)
I0000 00:00:1796133318.510505   12238 environment.cc:532] Selected adapter: llvmpipe (LLVM 15.0.6, 256 bits), \
arch=software, vendor=mesa, backend=Vulkan, adapterType=CPU / Software
ERROR: Following operations are not supported by GPU delegate:
ARG_MAX: Tensor type(INT64) is not supported. ArgMax
CAST: Tensor type(INT64) is not supported. ArgMax
3 operations will run on the GPU, and the remaining 2 operations will run on the CPU.
I0000 00:00:1796133422.990898   13575 delegate_kernel.cc:984] Initializing WebGPU-based API from graph.
"""

HARDWARE = "environment.cc:532] Selected adapter: Adreno (TM) 740, arch=a7xx, vendor=qualcomm, backend=Vulkan, " \
           "adapterType=Integrated GPU\n"

X86_CPUINFO = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu vme sse2\n"
PI_CPUINFO = "processor\t: 0\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n" \
             "Model\t\t: Raspberry Pi 5 Model B Rev 1.0\n"


def test_the_refused_operators_and_their_reasons():
    assert refused_operators(GPU_LOG) == [
        {"op": "ARG_MAX", "reason": "Tensor type(INT64) is not supported. ArgMax"},
        {"op": "CAST", "reason": "Tensor type(INT64) is not supported. ArgMax"}]
    assert refused_operators("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n") == []


def test_a_software_adapter_is_told_from_a_hardware_one():
    soft = adapter(GPU_LOG)
    assert soft == {"name": "llvmpipe (LLVM 15.0.6, 256 bits)", "vendor": "mesa", "backend": "Vulkan",
                    "type": "CPU / Software", "software": True}
    hard = adapter(HARDWARE)
    assert hard is not None and hard["software"] is False and hard["vendor"] == "qualcomm"
    assert adapter("no adapter line") is None


def test_an_arm_userland_on_an_x86_cpu_is_emulated():
    assert "qemu-user" in (emulation("aarch64", X86_CPUINFO) or "")
    assert emulation("aarch64", PI_CPUINFO) is None
    assert emulation("x86_64", X86_CPUINFO) is None
    assert emulation("x86_64", PI_CPUINFO) is not None


def test_the_gpu_profile_predicts_int64_and_rank_fallbacks():
    from edgesdk.profiles import load_profile
    from edgesdk.targets.gpu import disagreement, fallback
    from edgesdk.tflite.facts import ModelReport, OpInfo, TensorInfo

    tensors = [TensorInfo(0, "x", [1, 64], "FLOAT32", 256, False), TensorInfo(1, "axis", [], "INT32", 4, True),
               TensorInfo(2, "idx", [1], "INT64", 8, False), TensorInfo(3, "y", [1, 1, 8, 8, 1], "FLOAT32", 256, False),
               TensorInfo(4, "z", [2, 2], "FLOAT32", 16, False)]
    layers = [OpInfo(0, "CAST", 1, "idx", [1], "INT64", 8, 0, (0,)),
              OpInfo(1, "RESHAPE", 1, "y", [1, 1, 8, 8, 1], "FLOAT32", 256, 0, (0,)),
              OpInfo(2, "GATHER_ND", 1, "z", [2, 2], "FLOAT32", 16, 0, (0,)),
              OpInfo(3, "ADD", 1, "z", [2, 2], "FLOAT32", 16, 0, (4, 4))]
    report = ModelReport("m.tflite", 0, {}, {}, 0, 0, 0, 0, "fp32", [], [], layers, tensors)
    gpu = load_profile("mobile-gpu")
    found = {entry["op"]: entry["reason"] for entry in fallback(report, gpu)}
    assert set(found) == {"CAST", "RESHAPE", "GATHER_ND"}
    assert "INT64" in found["CAST"] and "5-D" in found["RESHAPE"] and "operator set" in found["GATHER_ND"]
    reported = {"used": "gpu", "fully_accelerated": False, "fallback_ops": ["CAST", "GATHER_ND", "RESHAPE"]}
    assert disagreement(report, gpu, reported) is None
    told = disagreement(report, gpu, {**reported, "fallback_ops": ["ADD", "CAST", "GATHER_ND", "RESHAPE"]})
    assert told is not None and "ADD fell back" in told


def test_a_suite_measures_on_its_profiles_accelerator_unless_it_names_one(tmp_path):
    import pytest

    from edgesdk.errors import EdgeSdkError
    from edgesdk.suite import spec
    from edgesdk.suite.runner import settings_for

    (tmp_path / "m.tflite").write_bytes(b"")

    def suite(bench: str, profile: str = "mobile-gpu"):
        path = tmp_path / "suite.yaml"
        path.write_text(f"name: gpu\nprofile: {profile}\nmodels: [{{path: m.tflite}}]\ndevices: [local]\n{bench}")
        return spec.load(path)

    assert settings_for(suite("")).accelerator == "gpu"
    assert settings_for(suite("bench: {accelerator: cpu}\n")).accelerator == "cpu"
    assert settings_for(suite("", profile="rpi5")).accelerator is None
    with pytest.raises(EdgeSdkError, match="accelerator"):
        suite("bench: {accelerator: tpu}\n")
