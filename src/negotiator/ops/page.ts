/**
 * The page at / : one chart per peer (RTT of both families over the last 15 minutes, loss below,
 * blackhole periods shaded, a marker with its reason at each switch), refreshed every second by
 * polling /history.json for newer samples. Hand-drawn SVG, no library, nothing fetched from
 * elsewhere. The DOM names what it draws (data-peer, data-family, data-reason) so a browser test
 * can check it.
 */

/** The page (the server fills in __NODE__). */
export const PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>afsteerd __NODE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:13px system-ui,sans-serif;margin:16px;background:#fafafa;color:#222}
h1{font-size:18px;margin:0 0 4px} .sub{color:#666;margin-bottom:12px}
.peer{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 10px;margin:0 0 12px;max-width:980px}
.peer h2{font-size:14px;margin:0 0 4px} .badge{display:inline-block;padding:0 6px;border-radius:8px;margin-left:6px;font-size:12px;color:#fff}
.up{background:#2a9d3a}.degraded{background:#d49a00}.blackhole{background:#c0392b}.probing{background:#888}
svg text{font-size:10px;fill:#555} .axis{stroke:#ccc} .IPv4{stroke:#1f77b4} .IPv6{stroke:#e8590c}
.rtt,.loss{fill:none;stroke-width:1.5} .switch line{stroke:#7b2cbf;stroke-dasharray:3 2} .switch text{fill:#7b2cbf}
.bh{opacity:.18} .bh.IPv4{fill:#1f77b4} .bh.IPv6{fill:#e8590c} #err{color:#c0392b}
</style></head><body>
<h1>afsteerd <span id="node">__NODE__</span></h1>
<div class="sub">per peer: probe RTT (ms) and loss (%) of <b style="color:#1f77b4">IPv4</b> and <b style="color:#e8590c">IPv6</b>, last 15 minutes; shaded: blackhole; purple: switches with their reason. <span id="updated"></span> <span id="err"></span></div>
<div id="peers"></div>
<script>
(function(){
var SPAN=15*60*1000, W=940, H=190, TOP=10, RH=110, LT=135, LH=40, L=46, R=8, NS='http://www.w3.org/2000/svg';
var data={}, since=-1, last=0, first=Infinity, span=60000;
function el(n,a,p){var e=document.createElementNS(NS,n);for(var k in a)e.setAttribute(k,a[k]);if(p)p.appendChild(e);return e}
function merge(h){
  for(var i=0;i<h.peers.length;i++){var p=h.peers[i],d=data[p.peer];
    if(!d)d=data[p.peer]={t:[],f:{},sw:[],active:p.active};
    d.active=p.active;
    for(var fam in p.families){var f=d.f[fam]||(d.f[fam]={rtt:[],loss:[],state:[]}),g=p.families[fam];
      var pad=d.t.length-f.rtt.length;for(var j=0;j<pad;j++){f.rtt.push(null);f.loss.push(null);f.state.push(null)}
      f.rtt=f.rtt.concat(g.rtt);f.loss=f.loss.concat(g.loss);f.state=f.state.concat(g.state)}
    d.t=d.t.concat(p.t);d.sw=d.sw.concat(p.switches);
    for(var k=0;k<p.t.length;k++){if(p.t[k]>last)last=p.t[k];if(p.t[k]<first)first=p.t[k]}
    for(var s=0;s<p.switches.length;s++)if(p.switches[s].t>last)last=p.switches[s].t;}
  var from=last-SPAN;
  for(var n in data){var d=data[n],c=0;while(c<d.t.length&&d.t[c]<from)c++;
    d.t=d.t.slice(c);for(var fam in d.f){var f=d.f[fam];f.rtt=f.rtt.slice(c);f.loss=f.loss.slice(c);f.state=f.state.slice(c)}
    d.sw=d.sw.filter(function(s){return s.t>=from})}
  since=last;
  // The axis shows what there is: from one minute up to the 15 minutes kept.
  span=Math.max(60000,Math.min(SPAN,last-Math.max(first,from)));
}
function x(t){return L+(W-L-R)*(t-(last-span))/span}
function draw(){
  var root=document.getElementById('peers'),names=Object.keys(data).sort(function(a,b){return (data[b].active-data[a].active)||(a<b?-1:1)});
  for(var i=0;i<names.length;i++){var n=names[i],d=data[n],box=document.getElementById('peer-'+n);
    if(!box){box=document.createElement('div');box.className='peer';box.id='peer-'+n;box.setAttribute('data-peer',n);root.appendChild(box)}
    box.textContent='';var h=document.createElement('h2');h.textContent=n+(d.active?' (pairs)':'');box.appendChild(h);
    var fams=Object.keys(d.f).sort(),max=1;
    for(var a=0;a<fams.length;a++){var f=d.f[fams[a]];for(var j=0;j<f.rtt.length;j++)if(f.rtt[j]!==null&&f.rtt[j]>max)max=f.rtt[j];
      var st=null;for(var j=f.state.length-1;j>=0&&st===null;j--)st=f.state[j];
      var b=document.createElement('span');b.className='badge '+(st||'probing');b.setAttribute('data-family',fams[a]);b.setAttribute('data-state',st||'probing');b.textContent=fams[a]+' '+(st||'probing');h.appendChild(b)}
    max=Math.ceil(max*1.15);
    var svg=el('svg',{width:W,height:H,viewBox:'0 0 '+W+' '+H,'class':'chart','data-peer':n},box);
    el('line',{x1:L,x2:W-R,y1:TOP+RH,y2:TOP+RH,'class':'axis'},svg);el('line',{x1:L,x2:W-R,y1:LT+LH,y2:LT+LH,'class':'axis'},svg);
    el('text',{x:2,y:TOP+8},svg).textContent=max+' ms';el('text',{x:2,y:TOP+RH},svg).textContent='0';
    el('text',{x:2,y:LT+8},svg).textContent='loss';el('text',{x:2,y:LT+LH},svg).textContent='0%';
    for(var m=0;m<=4;m++){var ago=span*(4-m)/4;el('text',{x:x(last-ago)-(m===4?24:10),y:H-2},svg).textContent=ago>=120000?'-'+Math.round(ago/60000)+' min':(ago?'-'+Math.round(ago/1000)+' s':'now')}
    for(var a=0;a<fams.length;a++){var fam=fams[a],f=d.f[fam],pr='',pl='',pen=false,pen2=false,bh=null;
      for(var j=0;j<d.t.length;j++){var X=x(d.t[j]).toFixed(1);
        if(f.rtt[j]!==null){pr+=(pen?'L':'M')+X+' '+(TOP+RH-RH*f.rtt[j]/max).toFixed(1);pen=true}else pen=false;
        if(f.loss[j]!==null){pl+=(pen2?'L':'M')+X+' '+(LT+LH-LH*f.loss[j]).toFixed(1);pen2=true}else pen2=false;
        if(f.state[j]==='blackhole'){if(bh===null)bh=d.t[j]}else if(bh!==null){el('rect',{x:x(bh),y:TOP,width:Math.max(2,x(d.t[j])-x(bh)),height:LT+LH-TOP,'class':'bh '+fam,'data-family':fam},svg);bh=null}}
      if(bh!==null)el('rect',{x:x(bh),y:TOP,width:Math.max(2,x(last)-x(bh)),height:LT+LH-TOP,'class':'bh '+fam,'data-family':fam},svg);
      el('path',{d:pr||'M0 0','class':'rtt '+fam,'data-family':fam,'data-points':String(f.rtt.filter(function(v){return v!==null}).length)},svg);
      el('path',{d:pl||'M0 0','class':'loss '+fam,'data-family':fam},svg)}
    for(var s=0;s<d.sw.length;s++){var w=d.sw[s],X=x(w.t),g=el('g',{'class':'switch','data-reason':w.class,'data-to':w.to},svg);
      var lbl=el('text',{x:X>W-200?X-3:X+3,y:TOP+10+12*(s%3),'text-anchor':X>W-200?'end':'start'},g);lbl.textContent=w.from+'\\u2192'+w.to+' '+w['class'];
      el('line',{x1:X,x2:X,y1:TOP,y2:LT+LH},g);
      el('title',{},g).textContent=new Date(w.t).toISOString()+' '+w.pair+': '+w.from+' \\u2192 '+w.to+' ('+w.reason+')'}}
}
function poll(){
  var r=new XMLHttpRequest();r.open('GET','/history.json?since='+since);r.timeout=5000;
  r.onload=function(){try{merge(JSON.parse(r.responseText));draw();document.getElementById('updated').textContent='updated '+new Date().toLocaleTimeString();document.getElementById('err').textContent=''}catch(e){document.getElementById('err').textContent=String(e)}setTimeout(poll,1000)};
  r.onerror=r.ontimeout=function(){document.getElementById('err').textContent='daemon unreachable';setTimeout(poll,2000)};
  r.send()}
poll();
})();
</script></body></html>
`;
