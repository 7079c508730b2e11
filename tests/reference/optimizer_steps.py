# Three updates of every optimizer on seed 003's network (2-2-2 sigmoid,
# shared biases, half-sse, one sample), worked out in float64 straight from
# the formulas of torch.optim.SGD, Adam, AdamW and RMSprop (their
# single-tensor code paths, as PyTorch 2.x documents them), independently of
# gputrain's code: the gradient is written out by hand for this network,
# and momentum's first step copies the gradient as PyTorch's does.
# tests/agreement.rs holds the printed numbers; run this to regenerate them:
#   python3 tests/reference/optimizer_steps.py
import math
x = [0.05, 0.10]; y = [0.01, 0.99]
p0 = [0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60]  # w1..w4 b1 w5..w8 b2
sig = lambda z: 1/(1+math.exp(-z))
def grad(p):
    w1,w2,w3,w4,b1,w5,w6,w7,w8,b2 = p
    h1 = sig(w1*x[0]+w2*x[1]+b1); h2 = sig(w3*x[0]+w4*x[1]+b1)
    o1 = sig(w5*h1+w6*h2+b2); o2 = sig(w7*h1+w8*h2+b2)
    d1 = (o1-y[0])*o1*(1-o1); d2 = (o2-y[1])*o2*(1-o2)
    e1 = (w5*d1+w7*d2)*h1*(1-h1); e2 = (w6*d1+w8*d2)*h2*(1-h2)
    return [e1*x[0], e1*x[1], e2*x[0], e2*x[1], e1+e2, d1*h1, d1*h2, d2*h1, d2*h2, d1+d2]
def run(kind, lr=0.5, mu=0.9, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, alpha=0.99,
        centered=False, steps=3):
    p = list(p0); s0=[0.0]*10; s1=[0.0]*10; s2=[0.0]*10
    for t in range(1, steps+1):
        g = grad(p)
        for i in range(10):
            # AdamW decays the parameter, not the gradient.
            gi = g[i] + wd*p[i] if wd and kind != 'adamw' else g[i]
            if kind == 'sgd':
                p[i] = p[i] - lr*gi
            elif kind == 'momentum':
                s0[i] = gi if t == 1 else mu*s0[i] + gi
                p[i] = p[i] - lr*s0[i]
            elif kind == 'nesterov':
                s0[i] = gi if t == 1 else mu*s0[i] + gi
                p[i] = p[i] - lr*(gi + mu*s0[i])
            elif kind == 'adam':
                s0[i] = b1*s0[i] + (1-b1)*gi
                s1[i] = b2*s1[i] + (1-b2)*gi*gi
                mhat_step = lr/(1-b1**t)
                denom = math.sqrt(s1[i])/math.sqrt(1-b2**t) + eps
                p[i] = p[i] - mhat_step*s0[i]/denom
            elif kind == 'adamw':
                p[i] = p[i] * (1 - lr*wd)
                s0[i] = b1*s0[i] + (1-b1)*gi
                s1[i] = b2*s1[i] + (1-b2)*gi*gi
                denom = math.sqrt(s1[i])/math.sqrt(1-b2**t) + eps
                p[i] = p[i] - lr/(1-b1**t)*s0[i]/denom
            elif kind == 'rmsprop':
                s0[i] = alpha*s0[i] + (1-alpha)*gi*gi
                if centered:
                    s2[i] = alpha*s2[i] + (1-alpha)*gi
                    avg = math.sqrt(s0[i] - s2[i]*s2[i]) + eps
                else:
                    avg = math.sqrt(s0[i]) + eps
                if mu > 0:
                    s1[i] = mu*s1[i] + gi/avg
                    p[i] = p[i] - lr*s1[i]
                else:
                    p[i] = p[i] - lr*gi/avg
    return p, s0, s1
# (name, kind, learning rate, hyperparameters as gputrain names them)
cases = [
    ('Sgd', 'sgd', 0.5, {}),
    ('Momentum', 'momentum', 0.5, {}),
    ('Nesterov', 'nesterov', 0.5, {}),
    ('Adam', 'adam', 0.05, {}),
    ('Nesterov', 'nesterov', 0.5, {'WeightDecay': 0.01}),
    ('Adam', 'adam', 0.05, {'WeightDecay': 0.01}),
    ('Adamw', 'adamw', 0.05, {'WeightDecay': 0.01}),
    ('Adamw', 'adamw', 0.05, {'WeightDecay': 0.5}),
    ('Rmsprop', 'rmsprop', 0.01, {'Momentum': 0.0}),
    ('Rmsprop', 'rmsprop', 0.01, {'Momentum': 0.9, 'Centered': 1.0, 'WeightDecay': 0.01, 'Alpha': 0.9}),
    # 1 - beta near 1 in float32 is far from float32(1 - beta): 1 -
    # float32(0.99999) is 1.4e-4 too large, relative.
    ('Adam', 'adam', 0.05, {'Beta2': 0.99999}),
    ('Rmsprop', 'rmsprop', 0.01, {'Momentum': 0.0, 'Alpha': 0.99999}),
]
names = {'Momentum': 'mu', 'WeightDecay': 'wd', 'Alpha': 'alpha', 'Centered': 'centered', 'Beta2': 'b2'}
for name, kind, lr, hyper in cases:
    args = {names[h]: (bool(v) if h == 'Centered' else v) for h, v in hyper.items()}
    p, s0, s1 = run(kind, lr=lr, **args)
    given = ', '.join(f'(H::{h}, {v!r})' for h, v in hyper.items())
    print(f"    (Optimizer::{name}, {lr}, &[{given}], [{', '.join(repr(v) for v in p)}]),")
