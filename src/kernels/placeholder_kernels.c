/* placeholder until the module lands */
typedef int sp_placeholder_kernels;
