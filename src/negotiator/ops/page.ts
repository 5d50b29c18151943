/**
 * The page at / , made for a cluster of any size: first a summary an operator scans in seconds
 * (peers by state, pairs by wire family, switches in the last 15 minutes by reason, probed paths
 * by mode), then the worst peers first (blackholed, silent, by loss, recent switches, RTT) with a
 * filter by name or state — both from /summary.json, which covers every peer but returns at most
 * 50 rows — and a peer's charts on demand (click its row): RTT of both families over the last 15
 * minutes, loss below, blackhole periods shaded, a marker with its reason at each switch, from
 * /history.json?peers=… (with 10 peers or fewer, every peer's chart is open). Refreshed every
 * second. Hand-drawn SVG, no library, nothing fetched from elsewhere. The DOM names what it draws
 * (data-peer, data-state, data-family, data-reason) so a browser test can check it.
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
.silent{background:#555} #totals{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 10px;max-width:980px;margin-bottom:8px;line-height:1.8}
#totals b{font-size:15px} #totals .grp{display:inline-block;margin-right:18px;white-space:nowrap} .n{font-weight:600}
#worst{border-collapse:collapse;background:#fff;max-width:980px;width:100%;margin-bottom:12px} #worst td,#worst th{border-bottom:1px solid #eee;padding:3px 6px;text-align:left}
#worst tr.row{cursor:pointer} #worst tr.row:hover{background:#f0f4ff} #worst tr.open{background:#eef} #filters{margin:6px 0}
</style></head><body>
<h1>afsteerd <span id="node">__NODE__</span></h1>
<div class="sub"><span id="updated"></span> <span id="err"></span></div>
<div id="totals"></div>
<div id="filters"><input id="q" placeholder="filter by peer name" size="24"> <select id="state"><option value="">any state</option><option>blackhole</option><option>silent</option><option>degraded</option><option>probing</option><option>up</option></select> <span id="matched"></span></div>
<table id="worst"><thead><tr><th>peer</th><th>state</th><th>IPv4 RTT / loss</th><th>IPv6 RTT / loss</th><th>pairs</th><th>switches (15 min)</th></tr></thead><tbody></tbody></table>
<div class="sub">charts (click a peer above): probe RTT (ms) and loss (%) of <b style="color:#1f77b4">IPv4</b> and <b style="color:#e8590c">IPv6</b>, last 15 minutes; shaded: blackhole; purple: switches with their reason.</div>
<div id="peers"></div>
<script>
(function(){
var SPAN=15*60*1000, W=940, H=190, TOP=10, RH=110, LT=135, LH=40, L=46, R=8, NS='http://www.w3.org/2000/svg';
var data={}, since=-1, last=0, first=Infinity, span=60000;
function el(n,a,p){var e=document.createElementNS(NS,n);for(var k in a)e.setAttribute(k,a[k]);if(p)p.appendChild(e);return e}
function merge(h){
  for(var i=0;i<h.peers.length;i++){var p=h.peers[i],d=data[p.peer];if(!open[p.peer])continue;
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
var open={}, auto=true, shownAt=null, q='', st='';
function txt(e,t){e.textContent=t;return e}
function grp(root,title,items){var g=document.createElement('span');g.className='grp';
  var b=document.createElement('b');b.textContent=title+' ';g.appendChild(b);
  for(var i=0;i<items.length;i++){var s=document.createElement('span');s.setAttribute(items[i][2],items[i][0]);s.className='n';s.textContent=items[i][1]+' '+items[i][0];g.appendChild(s);if(i<items.length-1)g.appendChild(document.createTextNode(' \u00b7 '))}
  root.appendChild(g)}
function fmt(f){if(!f)return '\u2013';return (f.rttMs===undefined?'\u2013':f.rttMs.toFixed(2)+' ms')+' / '+(f.loss===undefined?'\u2013':(100*f.loss).toFixed(1)+'%')}
function state(r){if(!r.alive)return 'silent';var w='up',rank={up:0,probing:1,degraded:2,blackhole:4};for(var k in r.families)if(rank[r.families[k].state]>rank[w])w=r.families[k].state;return w}
function showSummary(s){
  var t=s.totals,root=document.getElementById('totals');root.textContent='';
  grp(root,t.peers+' peers:',[['up',t.byState.up,'data-state'],['degraded',t.byState.degraded,'data-state'],['blackhole',t.byState.blackhole,'data-state'],['probing',t.byState.probing,'data-state'],['silent',t.byState.silent,'data-state']]);
  grp(root,'pairs:',[['native',t.pairs.native,'data-wire'],['ipv4',t.pairs.ipv4,'data-wire'],['ipv6',t.pairs.ipv6,'data-wire']]);
  var br=[];for(var k in t.switches.byReason)if(t.switches.byReason[k])br.push([k,t.switches.byReason[k],'data-reason']);
  grp(root,'switches, 15 min: '+t.switches.total+(br.length?' \u2014':''),br);
  grp(root,'probed paths:',[['demand',t.paths.demand,'data-mode'],['fast',t.paths.fast,'data-mode'],['idle',t.paths.idle,'data-mode']]);
  txt(document.getElementById('matched'),s.matched+' of '+t.peers+' peers match'+(s.matched>s.peers.length?', the worst '+s.peers.length+' shown':''));
  var body=document.querySelector('#worst tbody');body.textContent='';
  for(var i=0;i<s.peers.length;i++){var r=s.peers[i],tr=document.createElement('tr'),stt=state(r);tr.className='row'+(open[r.peer]?' open':'');tr.setAttribute('data-peer',r.peer);tr.setAttribute('data-state',stt);
    txt(tr.insertCell(),r.peer+(r.active?' (pairs)':''));var c=tr.insertCell(),b=document.createElement('span');b.className='badge '+stt;b.textContent=stt;c.appendChild(b);
    txt(tr.insertCell(),fmt(r.families.IPv4));txt(tr.insertCell(),fmt(r.families.IPv6));
    txt(tr.insertCell(),String(r.pairs.native+r.pairs.ipv4+r.pairs.ipv6));txt(tr.insertCell(),String(r.switches));
    tr.onclick=(function(n){return function(){toggle(n)}})(r.peer);body.appendChild(tr)}
  if(shownAt===null){shownAt=performance.now();document.body.setAttribute('data-summary-ms',shownAt.toFixed(0))}
  // A small cluster: every peer's chart open, as before.
  if(auto&&t.peers<=10)for(var j=0;j<s.peers.length;j++)if(!open[s.peers[j].peer])toggle(s.peers[j].peer,true);
}
function toggle(n,keep){
  if(open[n]&&!keep){delete open[n];delete data[n];var box=document.getElementById('peer-'+n);if(box)box.remove();auto=false;return}
  if(open[n])return;open[n]=true;
  get('/history.json?peers='+encodeURIComponent(n),function(h){merge(h);draw()})}
function get(url,ok){var r=new XMLHttpRequest();r.open('GET',url);r.timeout=5000;
  r.onload=function(){try{ok(JSON.parse(r.responseText));document.getElementById('err').textContent=''}catch(e){document.getElementById('err').textContent=String(e)}};
  r.onerror=r.ontimeout=function(){document.getElementById('err').textContent='daemon unreachable'};r.send()}
function poll(){
  get('/summary.json?limit=50&q='+encodeURIComponent(q)+'&state='+encodeURIComponent(st),function(s){showSummary(s);txt(document.getElementById('updated'),'updated '+new Date().toLocaleTimeString())});
  var names=Object.keys(open);
  if(names.length)get('/history.json?since='+since+'&peers='+names.map(encodeURIComponent).join(','),function(h){merge(h);draw()});
  setTimeout(poll,1000)}
document.getElementById('q').oninput=function(e){q=e.target.value;poll1()};
document.getElementById('state').onchange=function(e){st=e.target.value;poll1()};
function poll1(){get('/summary.json?limit=50&q='+encodeURIComponent(q)+'&state='+encodeURIComponent(st),showSummary)}
poll();
})();
</script></body></html>
`;
