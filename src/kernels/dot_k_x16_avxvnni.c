/* dot_k_x16_avxvnni.c - the K-quant tiles on sp_k_x16 rows for the
 * AVX-VNNI level (Alder Lake and later client cores, the Intel N100 / N97;
 * dot_k_x16_256.h): the products by the VEX-encoded vpdpbusd. */
#define K256_VNNI 1
#define K256_NAME(x) x##_avxvnni
#include "dot_k_x16_256.h"
