import socket, json, sys, time
def cmd(c, p=""):
    s=socket.create_connection(("127.0.0.1",4444),timeout=3)
    j=json.dumps({"command":c,"params":p,"token":"t"}).encode(); s.sendall(str(len(j)).encode()+b":"+j+b",")
    try: print("[ctrl]", c, p, s.recv(4096)[:200], flush=True)
    except Exception as e: print("[ctrl]",c,e)
    s.close()
for a in sys.argv[1:]:
    if a.startswith("sleep="): time.sleep(float(a[6:])); continue
    c,_,p=a.partition(" "); cmd(c,p)
