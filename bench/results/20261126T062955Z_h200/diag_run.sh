# one-off GPU diagnosis run (2026-11-26): build, error-path checks, the remaining parity tests
cd "$(dirname "$0")/.." || exit 1
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 ))s]"; }
export TORCH_CUDA_ARCH_LIST=9.0a MAX_JOBS=16
python3 setup.py build_ext --inplace > $OUT/build.log 2>&1 || { tail -30 $OUT/build.log; exit 1; }
echo "$(el) built"; g++ --version | head -1; /opt/gcc/bin/g++ --version | head -1
python3 -c "import torch; print('torch abi', torch._C._GLIBCXX_USE_CXX11_ABI, torch.__config__.show().splitlines()[1:4])"
for c in cpu_badmode cuda_badmode cuda_double cuda_channel65 cuda_tokens cuda_tokens_nograd_redispatch; do
  timeout 60 python3 -X faulthandler .diag/exc.py $c 2>&1 | grep -v "^  File\|^Thread\|^$\|Extension modules" | tail -4; echo "  rc=${PIPESTATUS[0]}"
done
echo "$(el) error cases done"
timeout 70 cuda-gdb -batch -ex run -ex bt -ex "info sharedlibrary asid" --args python3 .diag/exc.py cuda_tokens > $OUT/gdb.log 2>&1
grep -A25 "SIGSEGV\|signal" $OUT/gdb.log | head -40
echo "$(el) gdb done"
timeout 110 python3 -m pytest -m cuda tests/ -q -rfEs -p no:cacheprovider -k "not limits" 2>&1 | tail -15
echo "$(el) pytest done"
