# docs/oneshot/torch_check.py -- independent PyTorch check of the one-shot plateau: same small CNNtoRNN (Conv-4 with F=16, proj relu,
# vanilla relu RNN H=96, head), same Fashion-MNIST classes 0-4 episodes; usage: /usr/bin/python3 torch_check.py WAYS STEPS step|all|pix [BATCH=16] [FRAME=WAYS]
# (step: batch norm over the B images of one time step, as plastc; all: over all T*B images at once (the reference normalises per step, as plastc); pix: no encoder). Prints the
# training loss and query accuracy averaged over each 250 steps. Environment IRNN=S: recurrent weight S*I, recurrent bias 0. FRAME > WAYS: the WAYS-way episode inside a FRAME-wide label input
# and output (labels 0..WAYS-1, proj to H-FRAME), as plastc's --task-opt grow with grow_first=1 grow_pack=1 at its first stage.
import gzip,numpy as np,torch,torch.nn as nn,sys
torch.manual_seed(0); np.random.seed(0); torch.set_num_threads(1)
D='/usr/share/datasets/fashion-mnist/'
X=np.frombuffer(gzip.open(D+'train-images-idx3-ubyte.gz').read(),np.uint8,offset=16).reshape(-1,28,28)/255.
Y=np.frombuffer(gzip.open(D+'train-labels-idx1-ubyte.gz').read(),np.uint8,offset=8)
m=X[Y<5].mean(); s=X[Y<5].std(); X=((X-m)/s).astype(np.float32)
idx=[np.where(Y==c)[0] for c in range(10)]
N=int(sys.argv[1]); F=16; H=96; B=int(sys.argv[4]) if len(sys.argv)>4 else 16; STEPS=int(sys.argv[2]); BNMODE=sys.argv[3]  # 'step' or 'all'
W=int(sys.argv[5]) if len(sys.argv)>5 else N
def episode(classes):
    T=2*N; x=np.zeros((T,B,28,28),np.float32); lab=np.zeros((T,B,W),np.float32); tgt=np.zeros((T,B),np.int64)
    for b in range(B):
        cl=np.random.choice(classes,N,replace=False); sup=[];qry=[]
        for c in cl:
            a,q=np.random.choice(idx[c],2,replace=False); sup.append(a); qry.append(q)
        os_=np.random.permutation(N); oq=np.random.permutation(N)
        for t in range(T):
            j=os_[t] if t<N else oq[t-N]; x[t,b]=X[sup[j] if t<N else qry[j]]; tgt[t,b]=j
            if t<N: lab[t,b,j]=1
    return torch.tensor(x),torch.tensor(lab),torch.tensor(tgt)
def blk(ci): return [nn.Conv2d(ci,F,3,padding=1,bias=False),nn.BatchNorm2d(F),nn.ReLU(),nn.MaxPool2d(2)]
enc=nn.Sequential(*blk(1),*blk(F),*blk(F),*blk(F),nn.Flatten())
if BNMODE=='pix': enc=nn.Flatten(); F=784
proj=nn.Linear(F,H-W); cell=nn.RNNCell(H,H,nonlinearity='relu'); head=nn.Linear(H,W)
import os
if os.environ.get('IRNN'):  # IRNN=S: recurrent weight S*I and zero recurrent bias (Le et al. 2015) instead of U(+-1/sqrt(H))
    with torch.no_grad(): cell.weight_hh.copy_(float(os.environ['IRNN'])*torch.eye(H)); cell.bias_hh.zero_()
ps=[*enc.parameters(),*proj.parameters(),*cell.parameters(),*head.parameters()]
opt=torch.optim.AdamW(ps,1e-3,weight_decay=5e-4,amsgrad=True)
run=[]
for step in range(1,STEPS+1):
    x,lab,tgt=episode(range(5)); T=2*N
    if BNMODE=='all': e=enc(x.reshape(T*B,1,28,28)).reshape(T,B,F)
    elif BNMODE=='pix': e=enc(x.reshape(T*B,1,28,28)).reshape(T,B,F)
    else: e=torch.stack([enc(x[t].unsqueeze(1)) for t in range(T)])
    h=torch.zeros(B,H); loss=0; acc=0
    for t in range(T):
        h=cell(torch.cat([torch.relu(proj(e[t])),lab[t]],1),h); o=head(h)
        if t>=N: loss=loss+nn.functional.cross_entropy(o,tgt[t])/N; acc+=(o.argmax(1)==tgt[t]).float().mean().item()/N
    opt.zero_grad(); loss.backward(); opt.step(); run.append((loss.item(),acc))
    if step%250==0: r=np.array(run[-250:]).mean(0); print(step,'loss %.4f acc %.3f'%tuple(r),flush=True)
