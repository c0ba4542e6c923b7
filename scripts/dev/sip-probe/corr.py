import sys, struct, wave, audioop, numpy as np
def pcap_rtp(path):
    d=open(path,'rb').read(); off=24; pl=b''; pts=set()
    linktype=struct.unpack('<I',d[20:24])[0]
    while off < len(d):
        ts,us,incl,orig=struct.unpack('<IIII',d[off:off+16]); pkt=d[off+16:off+16+incl]; off+=16+incl
        # find IPv4 header
        i = {1:14, 113:16, 0:4}.get(linktype,14)
        ihl=(pkt[i]&15)*4; udp=pkt[i+ihl:]; rtp=udp[8:]
        pts.add(rtp[1]&127); pl+=rtp[12:]
    return pl, pts
def wav(path):
    w=wave.open(path); return np.frombuffer(w.readframes(w.getnframes()),dtype='<i2').astype(float), w.getframerate()
def ncc(ref, rx):
    ref=ref-ref.mean(); best=0; 
    c=np.correlate(rx, ref, 'valid') if len(rx)>=len(ref) else np.correlate(ref, rx,'valid')
    # normalise by sliding energy
    if len(rx)>=len(ref):
        e=np.sqrt(np.convolve(rx**2, np.ones(len(ref)),'valid'))*np.sqrt((ref**2).sum())
    else:
        e=np.sqrt(np.convolve(ref**2, np.ones(len(rx)),'valid'))*np.sqrt((rx**2).sum())
    r=c/np.maximum(e,1e-9); k=int(np.argmax(r)); return r[k], k
if __name__=='__main__':
    mode=sys.argv[1]
    if mode=='pcap':
        pl,pts=pcap_rtp(sys.argv[2]); ref=np.frombuffer(audioop.alaw2lin(pl,2),dtype='<i2').astype(float)
        rx,_=wav(sys.argv[3]); seg=ref[8000:8000+16000]
        print('pts',pts,'ref s',len(ref)/8000,'rx s',len(rx)/8000,'ncc(2s segment)=%.4f at lag %d'%ncc(seg,rx))
    elif mode=='tone':
        rx,sr=wav(sys.argv[2]);
        if sr!=8000: print('sr',sr)
        n=np.arange(4000); ref=np.sin(2*np.pi*1000*n/sr)
        # fraction of 100ms windows with tone dominant
        win=sr//10; ok=0; tot=0; 
        for s in range(0,len(rx)-win,win):
            x=rx[s:s+win]; X=np.abs(np.fft.rfft(x*np.hanning(win))); f=np.argmax(X)*sr/win
            tot+=1; ok+= (abs(f-1000)<20 and x.std()>500)
        print('rx s',len(rx)/sr,'tone windows %d/%d'%(ok,tot))
    elif mode=='wav':
        ref,_=wav(sys.argv[2]); rx,_=wav(sys.argv[3]); seg=ref[8000:8000+16000]
        print('ref s',len(ref)/8000,'rx s',len(rx)/8000,'ncc=%.4f lag %d'%ncc(seg,rx))
