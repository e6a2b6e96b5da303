// Programmatic dependent launch. On sm_90+ CudaContext launches every kernel with programmatic stream serialization:
// the next kernel in the stream may be scheduled while this one still runs. So every kernel starts with pdl_entry():
// it first waits until the grid before it has completed and its writes are visible (griddepcontrol.wait), then allows
// the kernel after it to launch (griddepcontrol.launch_dependents), whose blocks are then placed on the SMs during this
// kernel's last wave instead of after it; they too wait at their entry. A kernel that read or wrote memory before its
// pdl_entry() would race with its predecessor: PdlEntryTest (device-workers) checks that every __global__ function of
// this folder starts with it. Before sm_90 (and when launched without the attribute) both instructions are no-ops.
#ifndef AETHER_PDL_CUH
#define AETHER_PDL_CUH
__device__ __forceinline__ void pdl_entry() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

#endif
