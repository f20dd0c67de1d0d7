"""Numba kernels: implicit integration of fibre cable equations, vectorised over lanes.

Pure functions on arrays, SI units throughout (volts, amperes, siemens, farads,
seconds). A *lane* is one simulation (one fibre at one stimulus amplitude); state
arrays are laid out ``[compartment, lane]`` so that the innermost loops run over
lanes and vectorise.

The scheme is the one NEURON uses with its ``extracellular`` mechanism at a fixed step:
backward Euler for the voltages, with each ionic current linearised about the present
voltage (its slope is the sum of the open conductances, since every current is linear
in V at fixed gates), then the gates advanced exactly for the new voltage (staggered).
Every compartment has two unknowns: the intracellular potential and the periaxonal
potential (the layer between axon and myelin), which connects to the applied
extracellular potential through the myelin (capacitance and conductance per
compartment) and to its neighbours through the periaxonal axial conductance. A model
without a periaxonal layer uses a very large myelin conductance, as NEURON does.

Membrane models (``model``):
    1  MRG 2002 node: fast Na (m³h), persistent Na (p³; plus m³ without inactivation
       in the sensory variant), slow K (s), leak
    2  Sweeney 1987 (CRRSS) node: Na (m²h), leak
    3  Sundt 2015 C fibre: HH-type Na (m³h, shifted), delayed-rectifier K (n³l), leak

Compiled by numba (cached on disk); with ``ELECTROSTIM_NO_NUMBA=1`` they run as plain
Python (the switch is ``electrostim._jit``, shared by every kernel).
"""

from __future__ import annotations

import math

import numpy as np

from ..._jit import njit

MODEL_MRG = 1
MODEL_SWEENEY = 2
MODEL_SUNDT = 3
N_GATES = 4

# parameter vector layout (SI): conductance densities S/m², potentials V
P_GNA, P_GNAP, P_GK, P_GL, P_ENA, P_EK, P_EL, P_Q1, P_Q2, P_Q3, P_SHIFT_M, P_SHIFT_H, P_TEMP, P_GNAPF = range(14)
N_PARAMS = 14


@njit(cache=True, inline="always")
def _exp(x):
    return 0.0 if x < -100.0 else math.exp(x)


@njit(cache=True, inline="always")
def _lin_rate(a, x, c):
    """a·x / (1 − exp(−x/c)), with its limit a·c at x = 0."""
    if abs(x / c) < 1e-6:
        return a * c
    return a * x / (1.0 - _exp(-x / c))


@njit(cache=True)
def gate_rates(model, p, v_si, k):
    """Steady state and time constant (s) of gate ``k`` at membrane potential ``v_si`` (V)."""
    v = v_si * 1e3  # mV: the kinetics are written in mV and ms
    if model == MODEL_MRG:
        q1 = p[P_Q1]
        if k == 0:  # persistent Na activation p
            a = 0.00086725 if v < -150.0 else _lin_rate(0.01, v + 27.0, 10.2)
            b = 1.5855e-05 if v > 150.0 else _lin_rate(0.00025, -(v + 34.0), 10.0)
            a *= q1
            b *= q1
        elif k == 1:  # fast Na activation m
            a = 0.15733 if v < -150.0 else _lin_rate(1.86, v + 21.4, 10.3)
            b = 0.0057268 if v > 150.0 else _lin_rate(0.086, -(v + 25.7), 9.16)
            a *= q1
            b *= q1
        elif k == 2:  # fast Na inactivation h
            q2 = p[P_Q2]
            a = 0.0032594 if v > 150.0 else _lin_rate(0.062, -(v + 114.0), 11.0)
            b = 0.0014054 if v < -150.0 else 2.3 / (1.0 + _exp(-(v + 31.8) / 13.4))
            a *= q2
            b *= q2
        else:  # slow K activation s
            q3 = p[P_Q3]
            a = 3.3484e-05 if v < -150.0 else 0.3 / (_exp((v + 80.0 - 27.0) / -5.0) + 1.0)
            b = 3.3484e-06 if v < -150.0 else 0.03 / (_exp((v + 80.0 + 10.0) / -1.0) + 1.0)
            a *= q3
            b *= q3
        return a / (a + b), 1e-3 / (a + b)
    if model == MODEL_SWEENEY:
        q1 = p[P_Q1]
        if k == 0:  # m
            a = (126.0 + 0.363 * v) / (1.0 + _exp(-(49.0 + v) / 5.3))
            b = a / _exp_safe((v + 56.2) / 4.17)
        else:  # h
            b = 15.6 / (1.0 + _exp(-(v + 56.0) / 10.0))
            a = b / _exp_safe((v + 74.5) / 5.0)
        a *= q1
        b *= q1
        return a / (a + b), 1e-3 / (a + b)
    # MODEL_SUNDT
    q = p[P_Q1]
    if k == 0:  # m
        x = v + 65.0 + p[P_SHIFT_M]
        a = q * 0.32 * _expm1_rate(13.1 - x, 4.0)
        b = q * 0.28 * _expm1_rate(x - 40.1, 5.0)
        return a / (a + b), 1e-3 / (a + b)
    if k == 1:  # h
        x = v + 65.0 + p[P_SHIFT_H]
        a = q * 0.128 * math.exp((17.0 - x) / 18.0)
        b = q * 4.0 / (math.exp((40.0 - x) / 5.0) + 1.0)
        return a / (a + b), 1e-3 / (a + b)
    # delayed rectifier: Boltzmann-type rates with valence and half-activation
    f = 1e-3 * 9.648e4 / (8.315 * (273.16 + p[P_TEMP]))
    if k == 2:  # n
        e = math.exp(f * -5.0 * (v + 32.0))
        tau_ms = math.exp(f * -5.0 * 0.4 * (v + 32.0)) / (q * 0.03 * (1.0 + e))
    else:  # l
        e = math.exp(f * 2.0 * (v + 61.0))
        tau_ms = math.exp(f * 2.0 * 1.0 * (v + 61.0)) / (q * 0.001 * (1.0 + e))
    return 1.0 / (1.0 + e), tau_ms * 1e-3


@njit(cache=True, inline="always")
def _exp_safe(x):
    if x > 700.0:
        return math.exp(700.0)
    return _exp(x)


@njit(cache=True, inline="always")
def _expm1_rate(x, y):
    """x / (exp(x/y) − 1), with its limit near 0."""
    if abs(x / y) < 1e-6:
        return y * (1.0 - x / y / 2.0)
    return x / (math.exp(x / y) - 1.0)


@njit(cache=True, inline="always")
def membrane_current(model, p, v, g0, g1, g2, g3):
    """Ionic current density (A/m²) and its slope conductance (S/m²) at ``v`` (V) for fixed gates."""
    if model == MODEL_MRG:
        # persistent Na: the slow MRG gate, plus (sensory variant) a fast non-inactivating part
        gnap = p[P_GNAP] * g0 * g0 * g0 + p[P_GNAPF] * g1 * g1 * g1
        gna = p[P_GNA] * g1 * g1 * g1 * g2
        gk = p[P_GK] * g3
        gl = p[P_GL]
        i = (gnap + gna) * (v - p[P_ENA]) + gk * (v - p[P_EK]) + gl * (v - p[P_EL])
        return i, gnap + gna + gk + gl
    if model == MODEL_SWEENEY:
        gna = p[P_GNA] * g0 * g0 * g1
        gl = p[P_GL]
        return gna * (v - p[P_ENA]) + gl * (v - p[P_EL]), gna + gl
    gna = p[P_GNA] * g0 * g0 * g0 * g1
    gk = p[P_GK] * g2 * g2 * g2 * g3
    gl = p[P_GL]
    return gna * (v - p[P_ENA]) + gk * (v - p[P_EK]) + gl * (v - p[P_EL]), gna + gk + gl


@njit(cache=True)
def steady_gates(model, p, v, n_gates):
    """Gate values at steady state for a holding potential ``v`` (V)."""
    out = np.zeros(N_GATES)
    for k in range(n_gates):
        out[k] = gate_rates(model, p, v, k)[0]
    return out


#: gate tables span this membrane potential range (V), in steps of TABLE_DV
TABLE_VMIN, TABLE_VMAX, TABLE_DV = -0.250, 0.250, 1e-5


@njit(cache=True)
def gate_tables(model, p, n_gates, dt):
    """Steady state and the exact one-step relaxation factor 1 − exp(−dt/τ) of every gate,
    tabulated over membrane potential (linear interpolation between 0.01 mV points)."""
    n = int(round((TABLE_VMAX - TABLE_VMIN) / TABLE_DV)) + 1
    inf = np.zeros((N_GATES, n))
    fac = np.zeros((N_GATES, n))
    for i in range(n):
        v = TABLE_VMIN + i * TABLE_DV
        for k in range(n_gates):
            x, tau = gate_rates(model, p, v, k)
            inf[k, i] = x
            fac[k, i] = 1.0 - math.exp(-dt / tau)
    return inf, fac


@njit(cache=True, fastmath=True, error_model="numpy")
def _advance_block(
    model, p, n_gates, dt, n_steps, tab_inf, tab_fac,
    cm, gm, em, gx, cx, gi, gp, active, act_of, area,
    phi, amp, wave, lane_wave, step0, inj_idx, inj,
    vi, vp, gates, ee_old,
    detect, v_thr, fired, fired_step, local, local_idx,
    quiet_after, quiet_margin, v_rest, done,
    d00, d01, d10, d11, r0, r1,
):
    """Advance a block of lanes ``n_steps`` steps of ``dt`` from step index ``step0``.

    Arrays ``[comp, lane]``: vi, vp (intracellular and periaxonal potential, V), ee_old
    (extracellular potential of the previous step). gates ``[active, gate, lane]``.
    phi ``[source, comp, lane]``: potential (V) per unit amplitude of each source.
    wave ``[source, waveform, step]``: waveforms; lane ``l`` uses waveform ``lane_wave[l]``.
    amp ``[lane]``: amplitude scale.
    Lanes stop (``done``) once their action potential reaches the detection
    compartment, or once they are quiet after ``quiet_after`` steps. Returns the
    number of steps taken.
    """
    n, L = vi.shape
    n_src = phi.shape[0]
    n_act = active.shape[0]
    act_a = np.zeros(L)
    act_b = np.zeros(L)
    e_now = np.zeros(L)
    drive = np.zeros((n_src, L))
    for s in range(n_steps):
        step = step0 + s
        for q in range(n_src):
            for l in range(L):
                drive[q, l] = wave[q, lane_wave[l], step] * amp[l]
        # -- assemble each row and eliminate it at once (block Thomas, 2x2 blocks) -------
        # unknowns x_j = (vi_j, vp_j); row j:
        #   [[a + Si, -a], [Si, cxg + Sp]] x_j - [[gi, 0], [gi, gp]] (x_{j-1} + x_{j+1}) = r_j
        # a: membrane (capacitance/dt + linearised conductance); cxg: myelin (capacitance/dt
        # + conductance); Si, Sp: sums of the axial conductances to the neighbours.
        for j in range(n):
            gl_i = gi[j - 1] if j > 0 else 0.0
            gl_p = gp[j - 1] if j > 0 else 0.0
            si = gl_i + (gi[j] if j < n - 1 else 0.0)
            sp = gl_p + (gp[j] if j < n - 1 else 0.0)
            c_dt = cm[j] / dt
            cx_dt = cx[j] / dt
            cxg = cx_dt + gx[j]
            a_idx = act_of[j]
            inject = inj[step] if j == inj_idx else 0.0
            if a_idx >= 0:
                # the active membrane, linearised about the present voltage (a separate loop keeps
                # the passive rows free of branches)
                for l in range(L):
                    v = vi[j, l] - vp[j, l]
                    i_dens, g_dens = membrane_current(
                        model, p, v, gates[a_idx, 0, l], gates[a_idx, 1, l], gates[a_idx, 2, l], gates[a_idx, 3, l]
                    )
                    act_a[l] = g_dens * area[j]
                    act_b[l] = (g_dens * v - i_dens) * area[j]
            else:
                for l in range(L):
                    act_a[l] = 0.0
                    act_b[l] = 0.0
            # applied potential of each lane at this compartment
            for l in range(L):
                e_now[l] = phi[0, j, l] * drive[0, l]
            for q in range(1, n_src):
                for l in range(L):
                    e_now[l] += phi[q, j, l] * drive[q, l]
            base_a = c_dt + gm[j]
            base_b = gm[j] * em[j] + inject
            if j == 0:
                for l in range(L):
                    e = e_now[l]
                    v = vi[j, l] - vp[j, l]
                    a = base_a + act_a[l]
                    b0 = c_dt * v + base_b + act_b[l]
                    b1 = cx_dt * (vp[j, l] - ee_old[j, l]) + cxg * e + inject
                    ee_old[j, l] = e
                    m00 = a + si
                    m01 = -a
                    m10 = si
                    m11 = cxg + sp
                    inv_det = 1.0 / (m00 * m11 - m01 * m10)
                    d00[j, l] = m11 * inv_det
                    d01[j, l] = -m01 * inv_det
                    d10[j, l] = -m10 * inv_det
                    d11[j, l] = m00 * inv_det
                    r0[j, l] = b0
                    r1[j, l] = b1
            else:
                for l in range(L):
                    e = e_now[l]
                    v = vi[j, l] - vp[j, l]
                    a = base_a + act_a[l]
                    b0 = c_dt * v + base_b + act_b[l]
                    b1 = cx_dt * (vp[j, l] - ee_old[j, l]) + cxg * e + inject
                    ee_old[j, l] = e
                    # D'_j = D_j - L_j inv(D'_{j-1}) U_{j-1}; L = U = -G, G = [[gl_i, 0], [gl_i, gl_p]]
                    i00 = d00[j - 1, l]
                    i01 = d01[j - 1, l]
                    i10 = d10[j - 1, l]
                    i11 = d11[j - 1, l]
                    x00 = (i00 + i01) * gl_i
                    x01 = i01 * gl_p
                    x10 = (i10 + i11) * gl_i
                    x11 = i11 * gl_p
                    m00 = a + si - gl_i * x00
                    m01 = -a - gl_i * x01
                    m10 = si - (gl_i * x00 + gl_p * x10)
                    m11 = cxg + sp - (gl_i * x01 + gl_p * x11)
                    y0 = i00 * r0[j - 1, l] + i01 * r1[j - 1, l]
                    y1 = i10 * r0[j - 1, l] + i11 * r1[j - 1, l]
                    b0 += gl_i * y0
                    b1 += gl_i * y0 + gl_p * y1
                    inv_det = 1.0 / (m00 * m11 - m01 * m10)
                    d00[j, l] = m11 * inv_det
                    d01[j, l] = -m01 * inv_det
                    d10[j, l] = -m10 * inv_det
                    d11[j, l] = m00 * inv_det
                    r0[j, l] = b0
                    r1[j, l] = b1
        # back substitution: x_j = inv(D'_j) (r'_j + G_j x_{j+1})
        for l in range(L):
            vi[n - 1, l] = d00[n - 1, l] * r0[n - 1, l] + d01[n - 1, l] * r1[n - 1, l]
            vp[n - 1, l] = d10[n - 1, l] * r0[n - 1, l] + d11[n - 1, l] * r1[n - 1, l]
        for j in range(n - 2, -1, -1):
            g_i = gi[j]
            g_p = gp[j]
            for l in range(L):
                b0 = r0[j, l] + g_i * vi[j + 1, l]
                b1 = r1[j, l] + g_i * vi[j + 1, l] + g_p * vp[j + 1, l]
                vi[j, l] = d00[j, l] * b0 + d01[j, l] * b1
                vp[j, l] = d10[j, l] * b0 + d11[j, l] * b1
        # -- gates at the new voltage (exact for fixed v; rates from the tables) -------
        n_tab = tab_inf.shape[1]
        for m in range(n_act):
            j = active[m]
            for l in range(L):
                x = (vi[j, l] - vp[j, l] - TABLE_VMIN) / TABLE_DV
                if x < 0.0:
                    x = 0.0
                elif x > n_tab - 1.000001:
                    x = n_tab - 1.000001
                i0 = int(x)
                w = x - i0
                for k in range(n_gates):
                    inf = tab_inf[k, i0] + w * (tab_inf[k, i0 + 1] - tab_inf[k, i0])
                    fac = tab_fac[k, i0] + w * (tab_fac[k, i0 + 1] - tab_fac[k, i0])
                    gates[m, k, l] += fac * (inf - gates[m, k, l])
        # -- detection ----------------------------------------------------------------
        all_done = True
        for l in range(L):
            if done[l]:
                continue
            if detect >= 0:
                v = vi[detect, l] - vp[detect, l]
                if v >= v_thr and fired[l] == 0:
                    fired[l] = 1
                    fired_step[l] = step
                    done[l] = True
            for m in range(local_idx.shape[0]):
                j = local_idx[m]
                if vi[j, l] - vp[j, l] >= v_thr:
                    local[l] = 1
            if not done[l] and step >= quiet_after[l]:
                quiet = True
                for m in range(n_act):
                    j = active[m]
                    if vi[j, l] - vp[j, l] > v_rest + quiet_margin:
                        quiet = False
                        break
                if quiet:
                    done[l] = True
            if not done[l]:
                all_done = False
        if all_done:
            return s + 1
    return n_steps


@njit(cache=True, nogil=True)
def simulate(
    model, p, n_gates, dt, n_steps, tab_inf, tab_fac,
    cm, gm, em, gx, cx, gi, gp, active, act_of, area,
    phi, amp, wave, lane_wave, inj_idx, inj,
    vi0, vp0, gates0,
    detect, v_thr, local_idx, quiet_after, quiet_margin, v_rest, block,
):
    """Run all lanes from their initial state, block by block (blocks of ``block`` lanes).

    Releases the GIL, so callers may run several lane sets in threads.

    Returns ``(fired, fired_step, local, steps_taken)`` per lane: whether the detection
    compartment crossed ``v_thr``, at which step, whether any compartment in
    ``local_idx`` crossed it (excitation that may not have propagated), and how many
    steps the lane's block ran.
    """
    n, L = vi0.shape
    n_blocks = (L + block - 1) // block
    fired = np.zeros(L, np.int64)
    fired_step = np.full(L, -1, np.int64)
    local = np.zeros(L, np.int64)
    steps = np.zeros(L, np.int64)
    for bidx in range(n_blocks):
        l0 = bidx * block
        l1 = min(L, l0 + block)
        w = l1 - l0
        vi = vi0[:, l0:l1].copy()
        vp = vp0[:, l0:l1].copy()
        gates = gates0[:, :, l0:l1].copy()
        ee_old = np.zeros((n, w))
        ph = phi[:, :, l0:l1].copy()
        am = amp[l0:l1].copy()
        f = np.zeros(w, np.int64)
        fs = np.full(w, -1, np.int64)
        lo = np.zeros(w, np.int64)
        dn = np.zeros(w, np.bool_)
        d00 = np.empty((n, w))
        d01 = np.empty((n, w))
        d10 = np.empty((n, w))
        d11 = np.empty((n, w))
        r0 = np.empty((n, w))
        r1 = np.empty((n, w))
        taken = _advance_block(
            model, p, n_gates, dt, n_steps, tab_inf, tab_fac, cm, gm, em, gx, cx, gi, gp, active, act_of, area,
            ph, am, wave, lane_wave[l0:l1].copy(), 0, inj_idx, inj, vi, vp, gates, ee_old, detect, v_thr, f, fs, lo, local_idx,
            quiet_after[l0:l1].copy(), quiet_margin, v_rest, dn, d00, d01, d10, d11, r0, r1,
        )
        for l in range(w):
            fired[l0 + l] = f[l]
            fired_step[l0 + l] = fs[l]
            local[l0 + l] = lo[l]
            steps[l0 + l] = taken
    return fired, fired_step, local, steps


@njit(cache=True)
def relax(model, p, n_gates, dt, n_steps, cm, gm, em, gx, cx, gi, gp, active, act_of, area, vi, vp, gates):
    """Integrate one lane with no stimulus (to settle the resting state); updates arrays in place."""
    n = vi.shape[0]
    phi = np.zeros((1, n, 1))
    wave = np.zeros((1, 1, n_steps))
    amp = np.zeros(1)
    ee_old = np.zeros((n, 1))
    f = np.zeros(1, np.int64)
    fs = np.full(1, -1, np.int64)
    lo = np.zeros(1, np.int64)
    dn = np.zeros(1, np.bool_)
    none = np.zeros(0, np.int64)
    d00 = np.empty((n, 1))
    d01 = np.empty((n, 1))
    d10 = np.empty((n, 1))
    d11 = np.empty((n, 1))
    r0 = np.empty((n, 1))
    r1 = np.empty((n, 1))
    tab_inf, tab_fac = gate_tables(model, p, n_gates, dt)
    _advance_block(model, p, n_gates, dt, n_steps, tab_inf, tab_fac, cm, gm, em, gx, cx, gi, gp, active, act_of, area, phi, amp, wave,
                   np.zeros(1, np.int64), 0, -1, np.zeros(n_steps), vi, vp, gates, ee_old, -1, 1e9, f, fs, lo, none,
                   np.full(1, n_steps + 1, np.int64), 0.0, 0.0, dn,
                   d00, d01, d10, d11, r0, r1)
