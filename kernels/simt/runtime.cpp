// kernels/simt runtime: placeholder until the runtime lands.
