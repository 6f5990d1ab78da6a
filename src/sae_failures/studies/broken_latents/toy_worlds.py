"""The broken-latents posts' toy worlds (Chanin et al.): features, firing rules, dimensions.

Each is a ``ToySetup`` of the engine's toy machinery (``engine.toy_data``); a toy SAE run
(``engine.toy_training.ToyRun``) names its world by the setup itself.
"""

from __future__ import annotations

from sae_failures.engine.toy_data import ToySetup, linear

BL_SETUPS: dict[str, ToySetup] = {s.name: s for s in [
    ToySetup("absorption", 50, (0.25, 0.2, 0.05, 0.05), (1.0,) * 4, gated=((0, (1,)),),
             description="BL-1: 4 orthogonal features in 50 dims; f1 fires only with f0 "
                         "(P(f1 | f0) = 0.2, so P(f1) = 0.05)"),
    ToySetup("too_wide", 20, (0.2,) * 4, (1.0,) * 4,
             description="BL-2/3: 4 independent orthogonal features in 20 dims, p = 0.2"),
    ToySetup("too_wide_cooc", 20, (0.2,) * 4, (1.0,) * 4, forced=((0, (1, 2)),),
             description="BL-4: as too_wide, but f1 or f2 firing forces their parent f0"),
    ToySetup("too_wide_cooc_gated", 20, (0.2,) * 4, (1.0,) * 4, gated=((0, (1, 2)),),
             description="BL-4, the other reading: f1 and f2 fire only with f0 (p = 0.2 given f0)"),
    ToySetup("too_narrow", 50, linear(0.3 / 20, 0.3, 20), linear(20.0, 1.0, 20),
             description="BL-5: 20 independent orthogonal features in 50 dims, p rising "
                         "linearly to 0.3, magnitude falling linearly from 20 to 1"),
    ToySetup("cooc_a", 50, linear(0.3 / 20, 0.3, 20), linear(20.0, 1.0, 20), forced=((12, (5, 7)),),
             description="BL-6/7: too_narrow, with f5 or f7 forcing f12"),
    ToySetup("cooc_b", 50, linear(0.3 / 20, 0.3, 20), linear(20.0, 1.0, 20), forced=((6, (5, 7)),),
             description="BL-8: too_narrow, with f5 or f7 forcing f6 (the top expected-MSE feature)"),
    ToySetup("superposition", 19, linear(0.3 / 20, 0.3, 20), linear(20.0, 1.0, 20), forced=((6, (5, 7)),),
             description="BL-9: cooc_b with the 20 features squeezed into 19 dims"),
    ToySetup("single_latent", 20, (0.3, 0.4, 0.4, 0.2), (1.0,) * 4, gated=((0, (1, 2)),),
             description="BL-10: f0 p = 0.3; f1, f2 p = 0.4 given f0; f3 p = 0.2"),
]}


def get_setup(name: str) -> ToySetup:
    if name not in BL_SETUPS:
        raise ValueError(f"Unknown toy setup {name!r}. Valid setups: {', '.join(BL_SETUPS)}.")
    return BL_SETUPS[name]
