"""Power sources: each parser on its source's real format, the sampler on a sysfs tree we update."""

import threading
import time
from pathlib import Path

import pytest

from device_agent import power

# `vcgencmd pmic_read_adc` on a Raspberry Pi 5 (firmware 2024-2025): rails with current, then voltage;
# EXT5V and BATT have a voltage only.
PMIC = """\
     3V7_WL_SW_A current(0)=0.00000000A
       3V3_SYS_A current(1)=0.05074020A
       1V8_SYS_A current(2)=0.17179450A
      DDR_VDD2_A current(3)=0.02342052A
      DDR_VDDQ_A current(4)=0.00000000A
       1V1_SYS_A current(5)=0.17765120A
       0V8_SYS_A current(6)=0.33666160A
      VDD_CORE_A current(7)=0.72086240A
       3V3_DAC_A current(17)=0.00045787A
       3V3_ADC_A current(18)=0.00018315A
       0V8_AON_A current(16)=0.00498897A
          HDMI_A current(22)=0.02442450A
     3V7_WL_SW_V volt(8)=3.71877200V
       3V3_SYS_V volt(9)=3.31244400V
       1V8_SYS_V volt(10)=1.80021600V
      DDR_VDD2_V volt(11)=1.11208100V
      DDR_VDDQ_V volt(12)=0.61062000V
       1V1_SYS_V volt(13)=1.10476500V
       0V8_SYS_V volt(14)=0.80024400V
      VDD_CORE_V volt(15)=0.88156200V
       3V3_DAC_V volt(20)=3.30695600V
       3V3_ADC_V volt(21)=3.30695600V
       0V8_AON_V volt(19)=0.79963330V
          HDMI_V volt(23)=5.14738800V
        EXT5V_V volt(24)=5.13276400V
         BATT_V volt(25)=0.00000000V
"""


def test_pmic_sums_current_times_voltage_per_rail():
    expected = (0.05074020 * 3.31244400 + 0.17179450 * 1.80021600 + 0.02342052 * 1.11208100
                + 0.17765120 * 1.10476500 + 0.33666160 * 0.80024400 + 0.72086240 * 0.88156200
                + 0.00045787 * 3.30695600 + 0.00018315 * 3.30695600 + 0.00498897 * 0.79963330
                + 0.02442450 * 5.14738800)
    assert power.parse_pmic(PMIC) == pytest.approx(expected)
    with pytest.raises(ValueError):
        power.parse_pmic("error=1 error_msg=\"Command not registered\"")


def test_command_output_parsing():
    assert power.parse_watts("2.75\n") == 2.75
    assert power.parse_watts("power: 1.5e0 W (ch 2: 4.25 W)\n4.25") == 4.25
    with pytest.raises(ValueError):
        power.parse_watts("n/a")


def _write(root: Path, rel: str, value: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    _set(path, value)
    return path


def _set(path: Path, value: str) -> None:
    """Replace the file in one step, as a sysfs read always sees a whole value."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value + "\n")
    tmp.replace(path)


@pytest.fixture
def sysfs(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESDK_SYSFS_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no vcgencmd here
    return tmp_path


def test_hwmon_power_and_current_voltage(sysfs):
    _write(sysfs, "sys/class/hwmon/hwmon0/power1_input", "1500000")  # microwatts
    _write(sysfs, "sys/class/hwmon/hwmon1/curr1_input", "500")  # mA (INA3221 on Jetson via hwmon)
    _write(sysfs, "sys/class/hwmon/hwmon1/in1_input", "5000")  # mV
    _write(sysfs, "sys/class/hwmon/hwmon1/curr2_input", "100")  # no in2_input: ignored
    source, note = power.discover()
    assert source is not None and source.name == "hwmon" and note == "hwmon"
    assert source.read_w() == pytest.approx(1.5 + 2.5)


def test_jetson_ina3221_iio(sysfs):
    _write(sysfs, "sys/bus/i2c/drivers/ina3221x/0-0040/iio:device0/in_power0_input", "4200")  # mW
    _write(sysfs, "sys/bus/i2c/drivers/ina3221x/0-0040/iio:device0/in_power1_input", "800")
    source, _ = power.discover()
    assert source.name == "ina3221" and source.read_w() == pytest.approx(5.0)


def test_android_battery(sysfs):
    _write(sysfs, "sys/class/power_supply/usb/type", "USB")
    _write(sysfs, "sys/class/power_supply/battery/type", "Battery")
    _write(sysfs, "sys/class/power_supply/battery/current_now", "-350000")  # microamps, discharging
    _write(sysfs, "sys/class/power_supply/battery/voltage_now", "3900000")  # microvolts
    source, _ = power.discover()
    assert source.name == "battery" and source.read_w() == pytest.approx(0.35 * 3.9)


def test_rapl_counter_with_wraparound(sysfs):
    counter = _write(sysfs, "sys/class/powercap/intel-rapl:0/energy_uj", "999000000")
    _write(sysfs, "sys/class/powercap/intel-rapl:0/max_energy_range_uj", "1000000000")
    _write(sysfs, "sys/class/powercap/intel-rapl:0:0/energy_uj", "5")  # a subdomain: not summed
    source, _ = power.discover()
    assert source.name == "rapl"
    source._last = (time.monotonic() - 1.0, [999_000_000])  # one second ago
    _set(counter, "1000000")  # wrapped: 1 J + 1 J = 2 J in ~1 s
    assert source.read_w() == pytest.approx(2.0, rel=0.05)


def test_external_meter_command_wins(sysfs, tmp_path):
    _write(sysfs, "sys/class/hwmon/hwmon0/power1_input", "1000000")
    meter = tmp_path / "meter.sh"
    meter.write_text("#!/bin/sh\necho '3.25 W'\n")
    meter.chmod(0o755)
    source, _ = power.discover(str(meter))
    assert source.name == "command" and source.read_w() == 3.25


def test_nothing_found_says_why(sysfs):
    source, note = power.discover()
    assert source is None and "no power source found" in note and "hwmon" in note


def test_sampler_and_energy_on_a_tree_we_update(sysfs):
    """Idle at 1 W; 3 W while inferences run: energy per inference = 2 W x time / runs."""
    sensor = _write(sysfs, "sys/class/hwmon/hwmon0/power1_input", "1000000")
    source, _ = power.discover()
    runs = []

    def run_once():
        _set(sensor, "3000000")
        time.sleep(0.01)
        runs.append(1)

    result = power.measure(source, run_once, idle_s=0.3, active_s=0.5, interval_s=0.01)
    assert result["source"] == "hwmon" and not result["estimated"] and result["read_errors"] == 0
    assert result["idle_w"] == pytest.approx(1.0)
    assert result["active_w"] == pytest.approx(3.0, rel=0.1)  # the first sample may still read 1 W
    per_run_s = 0.5 / len(runs)
    assert result["energy_per_inference_mj"] == pytest.approx(2.0 * per_run_s * 1e3, rel=0.15)
    assert result["runs"] == len(runs) and result["samples"] > 20


def test_sampler_time_weighted_mean(sysfs):
    sensor = _write(sysfs, "sys/class/hwmon/hwmon0/power1_input", "1000000")
    source, _ = power.discover()
    flip = threading.Timer(0.2, lambda: _set(sensor, "5000000"))
    with power.Sampler(source, 0.005) as sampler:
        flip.start()
        time.sleep(0.4)
    assert 2.0 < sampler.mean_w() < 4.0  # about half the time at 1 W, half at 5 W


def test_a_bad_read_is_skipped_not_fatal(sysfs):
    sensor = _write(sysfs, "sys/class/hwmon/hwmon0/power1_input", "1000000")
    source, _ = power.discover()
    with power.Sampler(source, 0.005) as sampler:
        time.sleep(0.05)
        sensor.write_text("")  # a torn read
        time.sleep(0.05)
        _set(sensor, "1000000")
        time.sleep(0.05)
    assert sampler.read_errors > 0 and sampler.samples and sampler.mean_w() == pytest.approx(1.0)
